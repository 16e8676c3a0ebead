use std::collections::HashSet;
use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status};

use tokio::sync::watch;

use super::alarm_stream::{AlarmFilter, alarm_stream};
use super::{caller_deadline, observe};
use crate::alarms::{AlarmBus, AlarmId};
use crate::domain::{CallbackUrl, FieldViolation, OrderCode};
use crate::error::GatewayError;
use crate::mp::{Call, MpClient};
use crate::proto::alarm_service_server::AlarmService;
use crate::proto::{
    RegisterCallbackRequest, RegisterCallbackResponse, SubscribeAlarmsRequest,
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
}

impl AlarmApi {
    pub fn new(
        mp: MpClient,
        default_callback_url: Option<CallbackUrl>,
        bus: AlarmBus,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            mp,
            default_callback_url,
            bus,
            shutdown,
        }
    }

    fn callback_url(&self, requested: &str) -> Result<CallbackUrl, FieldViolation> {
        match (requested, &self.default_callback_url) {
            ("", Some(default)) => Ok(default.clone()),
            ("", None) => Err(FieldViolation::new(
                "http_url",
                "is required when the gateway has no PUBLIC_CALLBACK_URL configured",
            )),
            (url, _) => CallbackUrl::parse(url),
        }
    }
}

fn reseller_code(raw: &str) -> Result<&str, FieldViolation> {
    let violation = |why: &str| FieldViolation::new("reseller_code", why);
    if raw.is_empty() {
        return Err(violation("is required"));
    }
    if raw.len() > 64 || !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(violation(
            "must be up to 64 letters and digits, e.g. SG00000010",
        ));
    }
    Ok(raw)
}

fn parse_subscription(
    req: &SubscribeAlarmsRequest,
) -> Result<(Option<AlarmId>, AlarmFilter), GatewayError> {
    let request_id = observe::request_id(&req.request_id).err();
    let resume_after = match req.resume_after.as_str() {
        "" => Ok(None),
        raw => raw
            .parse::<AlarmId>()
            .map(Some)
            .map_err(|e| FieldViolation::new("resume_after", e.to_string())),
    };
    let order_codes = req
        .order_codes
        .iter()
        .map(|code| {
            OrderCode::parse(code)
                .map(|code| code.as_str().to_owned())
                .map_err(|v| {
                    FieldViolation::new("order_codes", format!("{:?} {}", v.field, v.description))
                })
        })
        .collect::<Result<HashSet<_>, _>>();
    let percent = (req.min_used_percent > 100)
        .then(|| FieldViolation::new("min_used_percent", "must be at most 100"));
    match (request_id, resume_after, order_codes, percent) {
        (None, Ok(resume_after), Ok(order_codes), None) => Ok((
            resume_after,
            AlarmFilter {
                order_codes,
                min_used_percent: req.min_used_percent,
            },
        )),
        (request_id, resume_after, order_codes, percent) => Err(GatewayError::invalid([
            request_id.as_ref(),
            resume_after.as_ref().err(),
            order_codes.as_ref().err(),
            percent.as_ref(),
        ])),
    }
}

type AlarmStream = Pin<Box<dyn Stream<Item = Result<SubscribeAlarmsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AlarmService for AlarmApi {
    async fn register_callback(
        &self,
        request: Request<RegisterCallbackRequest>,
    ) -> Result<Response<RegisterCallbackResponse>, Status> {
        let deadline = caller_deadline(&request);
        let req = request.into_inner();
        let request_id = observe::request_id(&req.request_id);
        let reseller = reseller_code(&req.reseller_code);
        let url = self.callback_url(&req.http_url);
        let (Ok(request_id), Ok(reseller), Ok(url)) = (&request_id, &reseller, &url) else {
            return Err(GatewayError::invalid([
                request_id.as_ref().err(),
                reseller.as_ref().err(),
                url.as_ref().err(),
            ])
            .into());
        };
        let call = Call {
            request_id,
            deadline,
        };
        let http_url = self.mp.save_alarm_callback(reseller, url, call).await?;
        Ok(Response::new(RegisterCallbackResponse {
            http_url,
            request_id: request_id.to_string(),
        }))
    }

    type SubscribeAlarmsStream = AlarmStream;

    async fn subscribe_alarms(
        &self,
        request: Request<SubscribeAlarmsRequest>,
    ) -> Result<Response<Self::SubscribeAlarmsStream>, Status> {
        let (resume_after, filter) = parse_subscription(request.get_ref())?;
        let subscription = self.bus.subscribe(resume_after).await?;
        let stream = alarm_stream(subscription, filter, self.shutdown.clone());
        Ok(Response::new(Box::pin(stream)))
    }
}
