use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status};

use super::caller_deadline;
use crate::domain::{CallbackUrl, FieldViolation, RequestId};
use crate::error::GatewayError;
use crate::mp::{Call, MpClient};
use crate::proto::alarm_service_server::AlarmService;
use crate::proto::{
    RegisterCallbackRequest, RegisterCallbackResponse, SubscribeAlarmsRequest,
    SubscribeAlarmsResponse,
};

/// `linksfield.mp.v1.AlarmService`.
#[derive(Debug, Clone)]
pub struct AlarmApi {
    mp: MpClient,
    /// `PUBLIC_CALLBACK_URL` with the callback token, used when a request names no URL.
    default_callback_url: Option<CallbackUrl>,
}

impl AlarmApi {
    pub fn new(mp: MpClient, default_callback_url: Option<CallbackUrl>) -> Self {
        Self {
            mp,
            default_callback_url,
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

type AlarmStream = Pin<Box<dyn Stream<Item = Result<SubscribeAlarmsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AlarmService for AlarmApi {
    async fn register_callback(
        &self,
        request: Request<RegisterCallbackRequest>,
    ) -> Result<Response<RegisterCallbackResponse>, Status> {
        let deadline = caller_deadline(&request);
        let req = request.into_inner();
        let request_id = RequestId::parse_or_generate(&req.request_id);
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
        let http_url = self
            .mp
            .save_alarm_callback(reseller, url, call)
            .await
            .map_err(GatewayError::from)?;
        Ok(Response::new(RegisterCallbackResponse {
            http_url,
            request_id: request_id.to_string(),
        }))
    }

    type SubscribeAlarmsStream = AlarmStream;

    async fn subscribe_alarms(
        &self,
        _request: Request<SubscribeAlarmsRequest>,
    ) -> Result<Response<Self::SubscribeAlarmsStream>, Status> {
        Err(Status::unimplemented(
            "SubscribeAlarms is not available yet: the alarm relay is a later milestone",
        ))
    }
}
