//! ConsumeAlarms, ListSubscriptions and DeleteSubscription requests as domain
//! values: the first message of a ConsumeAlarms stream, and the acks and
//! nacks of any message, each checked whole before anything is done.

use std::collections::HashSet;
use std::time::Duration;

use super::requests::{Checks, Identified, RawRequestId, identified, raw_request_id};
use crate::alarms::AlarmId;
use crate::alarms::shared::{ConsumerSettings, MAX_ACK_DEADLINE, SubscriptionName};
use crate::domain::{FieldViolation, RequestId};
use crate::proto::{ConsumeAlarmsRequest, DeleteSubscriptionRequest, ListSubscriptionsRequest};

/// `ack_deadline_seconds` when the first message leaves it 0.
pub const DEFAULT_ACK_DEADLINE: Duration = Duration::from_secs(30);
/// `max_outstanding` when the first message leaves it 0.
pub const DEFAULT_MAX_OUTSTANDING: usize = 100;
/// The most `max_outstanding` a stream may ask for.
pub const MAX_OUTSTANDING: u32 = 10_000;

raw_request_id!(
    ConsumeAlarmsRequest,
    ListSubscriptionsRequest,
    DeleteSubscriptionRequest
);

/// The first message of a ConsumeAlarms stream.
pub(crate) struct ConsumeStart {
    pub request_id: RequestId,
    pub settings: ConsumerSettings,
}

impl TryFrom<&ConsumeAlarmsRequest> for ConsumeStart {
    type Error = Vec<FieldViolation>;

    fn try_from(req: &ConsumeAlarmsRequest) -> Result<Self, Self::Error> {
        let mut checks = Checks::default();
        let request_id = checks.request_id(&req.request_id);
        let subscription = checks.field(SubscriptionName::parse("subscription", &req.subscription));
        let consumer = checks.field(match req.consumer.as_str() {
            "" => Ok(None),
            raw => SubscriptionName::parse("consumer", raw).map(Some),
        });
        let max_deadline = MAX_ACK_DEADLINE.as_secs();
        let ack_deadline = checks.field(match u64::from(req.ack_deadline_seconds) {
            0 => Ok(DEFAULT_ACK_DEADLINE),
            secs if secs <= max_deadline => Ok(Duration::from_secs(secs)),
            _ => Err(FieldViolation::new(
                "ack_deadline_seconds",
                format!("must be 1..{max_deadline} (0 means 30)"),
            )),
        });
        let max_outstanding = checks.field(match req.max_outstanding {
            0 => Ok(DEFAULT_MAX_OUTSTANDING),
            n if n <= MAX_OUTSTANDING => Ok(n as usize),
            _ => Err(FieldViolation::new(
                "max_outstanding",
                format!("must be 1..{MAX_OUTSTANDING} (0 means 100)"),
            )),
        });
        match (
            request_id,
            subscription,
            consumer,
            ack_deadline,
            max_outstanding,
        ) {
            (
                Some(request_id),
                Some(subscription),
                Some(consumer),
                Some(ack_deadline),
                Some(max_outstanding),
            ) => Ok(Self {
                request_id,
                settings: ConsumerSettings {
                    subscription,
                    consumer,
                    ack_deadline,
                    max_outstanding,
                },
            }),
            _ => Err(checks.violations()),
        }
    }
}

/// What one message of a stream acks and nacks, with the field each id came from.
#[derive(Debug, Default)]
pub(crate) struct Acks {
    pub ack: Vec<(String, AlarmId)>,
    pub nack: Vec<(String, AlarmId)>,
}

impl Acks {
    /// The ids of `req`; `first` says whether it is the stream's first message.
    pub fn parse(req: &ConsumeAlarmsRequest, first: bool) -> Result<Self, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        if !first {
            let set = [
                ("subscription", !req.subscription.is_empty()),
                ("consumer", !req.consumer.is_empty()),
                ("ack_deadline_seconds", req.ack_deadline_seconds != 0),
                ("max_outstanding", req.max_outstanding != 0),
                ("request_id", !req.request_id.is_empty()),
            ];
            for (field, _) in set.iter().filter(|(_, set)| *set) {
                violations.push(FieldViolation::new(
                    *field,
                    "may be set in the first message of a stream only",
                ));
            }
        }
        let ids = |name: &str, raw: &[String], violations: &mut Vec<FieldViolation>| {
            raw.iter()
                .enumerate()
                .filter_map(|(i, id)| {
                    let field = format!("{name}[{i}]");
                    match id.parse::<AlarmId>() {
                        Ok(id) => Some((field, id)),
                        Err(e) => {
                            violations.push(FieldViolation::new(field, e.to_string()));
                            None
                        }
                    }
                })
                .collect::<Vec<_>>()
        };
        let ack = ids("ack_ids", &req.ack_ids, &mut violations);
        let nack = ids("nack_ids", &req.nack_ids, &mut violations);
        let acked: HashSet<AlarmId> = ack.iter().map(|(_, id)| *id).collect();
        for (field, id) in &nack {
            if acked.contains(id) {
                violations.push(FieldViolation::new(
                    field.clone(),
                    format!("{id} is in ack_ids too: ack or nack it, not both"),
                ));
            }
        }
        if violations.is_empty() {
            Ok(Self { ack, nack })
        } else {
            Err(violations)
        }
    }
}

pub(crate) struct SubscriptionsQuery {
    pub request_id: RequestId,
}

impl TryFrom<&ListSubscriptionsRequest> for SubscriptionsQuery {
    type Error = Vec<FieldViolation>;

    fn try_from(req: &ListSubscriptionsRequest) -> Result<Self, Self::Error> {
        RequestId::parse_or_generate(&req.request_id)
            .map(|request_id| Self { request_id })
            .map_err(|v| vec![v])
    }
}

pub(crate) struct SubscriptionDeletion {
    pub request_id: RequestId,
    pub subscription: SubscriptionName,
}

impl TryFrom<&DeleteSubscriptionRequest> for SubscriptionDeletion {
    type Error = Vec<FieldViolation>;

    fn try_from(req: &DeleteSubscriptionRequest) -> Result<Self, Self::Error> {
        let mut checks = Checks::default();
        let request_id = checks.request_id(&req.request_id);
        let subscription = checks.field(SubscriptionName::parse("subscription", &req.subscription));
        match (request_id, subscription) {
            (Some(request_id), Some(subscription)) => Ok(Self {
                request_id,
                subscription,
            }),
            _ => Err(checks.violations()),
        }
    }
}

identified!(ConsumeStart, SubscriptionsQuery, SubscriptionDeletion);

#[cfg(test)]
mod tests {
    use super::*;

    fn first(subscription: &str) -> ConsumeAlarmsRequest {
        ConsumeAlarmsRequest {
            subscription: subscription.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_first_message_gets_the_defaults() {
        let start = ConsumeStart::try_from(&first("billing")).unwrap();
        assert_eq!(start.settings.ack_deadline, DEFAULT_ACK_DEADLINE);
        assert_eq!(start.settings.max_outstanding, DEFAULT_MAX_OUTSTANDING);
    }

    #[test]
    fn bad_first_messages_name_every_field_at_fault() {
        let req = ConsumeAlarmsRequest {
            subscription: "Billing".into(),
            consumer: "-x".into(),
            ack_deadline_seconds: 601,
            max_outstanding: MAX_OUTSTANDING + 1,
            ..Default::default()
        };
        let fields: Vec<String> = ConsumeStart::try_from(&req)
            .err()
            .unwrap()
            .into_iter()
            .map(|v| v.field.into_owned())
            .collect();
        assert_eq!(
            fields,
            [
                "subscription",
                "consumer",
                "ack_deadline_seconds",
                "max_outstanding"
            ]
        );
        assert!(ConsumeStart::try_from(&first("")).is_err());
        assert!(ConsumeStart::try_from(&first(&"a".repeat(64))).is_err());
        assert!(ConsumeStart::try_from(&first(&"a".repeat(63))).is_ok());
    }

    #[test]
    fn later_messages_only_ack_and_nack() {
        let req = ConsumeAlarmsRequest {
            subscription: "billing".into(),
            ack_ids: vec!["1-0".into(), "x".into()],
            nack_ids: vec!["1-0".into()],
            ..Default::default()
        };
        let fields: Vec<String> = Acks::parse(&req, false)
            .unwrap_err()
            .into_iter()
            .map(|v| v.field.into_owned())
            .collect();
        assert_eq!(fields, ["subscription", "ack_ids[1]", "nack_ids[0]"]);
        assert!(Acks::parse(&req, true).is_err());
    }
}
