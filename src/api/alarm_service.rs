use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status};

use tokio::sync::watch;

use super::alarm_stream::{AlarmFilter, alarm_stream};
use super::consume_stream::consume_stream;
use super::in_flight::InFlight;
use super::requests::{AlarmSubscription, CallbackRegistration, Identified};
use super::subscription_requests::{ConsumeStart, SubscriptionDeletion, SubscriptionsQuery};
use super::{caller_deadline, parse};
use crate::alarms::AlarmBus;
use crate::domain::{CallbackUrl, FieldViolation};
use crate::error::GatewayError;
use crate::mp::MpClient;
use crate::proto::alarm_service_server::AlarmService;
use crate::proto::{
    ConsumeAlarmsRequest, ConsumeAlarmsResponse, DeleteSubscriptionRequest,
    DeleteSubscriptionResponse, ListSubscriptionsRequest, ListSubscriptionsResponse,
    RegisterCallbackRequest, RegisterCallbackResponse, SharedSubscription, SubscribeAlarmsRequest,
    SubscribeAlarmsResponse,
};

/// `linksfield.mp.v1.AlarmService`.
#[derive(Clone)]
pub struct AlarmApi {
    mp: MpClient,
    /// `PUBLIC_CALLBACK_URL` with the callback token, used when a request names no URL.
    default_callback_url: Option<CallbackUrl>,
    bus: AlarmBus,
    /// Turns true on shutdown: open streams end at once with UNAVAILABLE.
    shutdown: watch::Receiver<bool>,
    /// Counts open streams so a shutdown can tell when only stuck ones are left.
    in_flight: InFlight,
}

impl AlarmApi {
    pub fn new(
        mp: MpClient,
        default_callback_url: Option<CallbackUrl>,
        bus: AlarmBus,
        shutdown: watch::Receiver<bool>,
        in_flight: InFlight,
    ) -> Self {
        Self {
            mp,
            default_callback_url,
            bus,
            shutdown,
            in_flight,
        }
    }

    /// The URL the caller named, else the gateway's default.
    fn callback_url(&self, requested: Option<CallbackUrl>) -> Result<CallbackUrl, GatewayError> {
        requested
            .or_else(|| self.default_callback_url.clone())
            .ok_or_else(|| {
                GatewayError::InvalidArgument(vec![FieldViolation::new(
                    "http_url",
                    "is required when the gateway has no PUBLIC_CALLBACK_URL configured",
                )])
            })
    }
}

/// `url` with the value of its `token` query parameter replaced by `…`: the
/// callback token is for MP, not for every gRPC client that registers a URL.
fn redact_token(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let query = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("token", _)) => "token=…",
            _ => pair,
        })
        .collect::<Vec<_>>()
        .join("&");
    match fragment {
        Some(fragment) => format!("{base}?{query}#{fragment}"),
        None => format!("{base}?{query}"),
    }
}

type AlarmStream = Pin<Box<dyn Stream<Item = Result<SubscribeAlarmsResponse, Status>> + Send>>;
type ConsumeStream = Pin<Box<dyn Stream<Item = Result<ConsumeAlarmsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AlarmService for AlarmApi {
    async fn register_callback(
        &self,
        request: Request<RegisterCallbackRequest>,
    ) -> Result<Response<RegisterCallbackResponse>, Status> {
        let deadline = caller_deadline(&request);
        let registration: CallbackRegistration = parse(request.get_ref())?;
        let url = self.callback_url(registration.http_url.clone())?;
        let call = registration.call(deadline);
        let http_url = self
            .mp
            .save_alarm_callback(&registration.reseller_code, &url, call)
            .await?;
        Ok(Response::new(RegisterCallbackResponse {
            http_url: redact_token(&http_url),
            request_id: registration.request_id.to_string(),
        }))
    }

    type SubscribeAlarmsStream = AlarmStream;

    async fn subscribe_alarms(
        &self,
        request: Request<SubscribeAlarmsRequest>,
    ) -> Result<Response<Self::SubscribeAlarmsStream>, Status> {
        let wanted: AlarmSubscription = parse(request.get_ref())?;
        let filter = AlarmFilter {
            order_codes: wanted.order_codes,
            min_used_percent: wanted.min_used_percent,
        };
        let subscription = self.bus.subscribe(wanted.resume_after).await?;
        let stream = alarm_stream(
            subscription,
            filter,
            self.shutdown.clone(),
            self.in_flight.alarm_stream(),
        );
        Ok(Response::new(Box::pin(stream)))
    }

    type ConsumeAlarmsStream = ConsumeStream;

    async fn consume_alarms(
        &self,
        request: Request<tonic::Streaming<ConsumeAlarmsRequest>>,
    ) -> Result<Response<Self::ConsumeAlarmsStream>, Status> {
        let mut inbound = request.into_inner();
        let Some(first) = inbound.message().await? else {
            return Err(GatewayError::InvalidArgument(vec![FieldViolation::new(
                "subscription",
                "is required: the first message of a ConsumeAlarms stream names the subscription",
            )])
            .into());
        };
        let start: ConsumeStart = parse(&first)?;
        let consumer = self.bus.shared().join(start.settings.clone()).await?;
        let stream = consume_stream(
            consumer,
            &start.settings,
            first,
            inbound,
            self.shutdown.clone(),
            self.in_flight.alarm_stream(),
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_subscriptions(
        &self,
        request: Request<ListSubscriptionsRequest>,
    ) -> Result<Response<ListSubscriptionsResponse>, Status> {
        let _query: SubscriptionsQuery = parse(request.get_ref())?;
        let subscriptions = self
            .bus
            .shared()
            .list()
            .await?
            .into_iter()
            .map(|s| SharedSubscription {
                name: s.name,
                consumers: s.consumers,
                pending: s.pending,
                backlog: s.backlog,
            })
            .collect();
        Ok(Response::new(ListSubscriptionsResponse { subscriptions }))
    }

    async fn delete_subscription(
        &self,
        request: Request<DeleteSubscriptionRequest>,
    ) -> Result<Response<DeleteSubscriptionResponse>, Status> {
        let deletion: SubscriptionDeletion = parse(request.get_ref())?;
        self.bus.shared().delete(&deletion.subscription).await?;
        Ok(Response::new(DeleteSubscriptionResponse {}))
    }
}

#[cfg(test)]
mod tests {
    use super::redact_token;

    #[test]
    fn only_the_token_value_is_hidden() {
        assert_eq!(
            redact_token("https://gw.example.com/cb?a=1&token=s3cr%2Bt&b=2#top"),
            "https://gw.example.com/cb?a=1&token=…&b=2#top"
        );
        assert_eq!(
            redact_token("https://gw.example.com/cb"),
            "https://gw.example.com/cb"
        );
        assert_eq!(
            redact_token("https://gw.example.com/cb?tokens=x"),
            "https://gw.example.com/cb?tokens=x"
        );
    }
}
