use std::time::Duration;

use tonic::{Request, Response, Status};

use super::{OrderQuery, caller_deadline, observe, required_id};
use crate::domain::{ActivationCode, FieldViolation, Iccid, OrderCode, Price, RequestId};
use crate::error::GatewayError;
use crate::idempotency::{Idempotency, Outcome, fingerprint};
use crate::mp::{Call, MpClient, NewOrder, SwitchButton};
use crate::proto::order_service_server::OrderService;
use crate::proto::{
    CreateOrderRequest, CreateOrderResponse, GetOrderStatusRequest, GetOrderStatusResponse,
    SwitchAction, SwitchOrderRequest, SwitchOrderResponse, TopUpOrderRequest, TopUpOrderResponse,
};

/// `linksfield.mp.v1.OrderService`.
#[derive(Clone)]
pub struct OrderApi {
    mp: MpClient,
    idempotency: Idempotency,
    /// The MP timeout: how long a duplicate waits at most for the first call.
    mp_timeout: Duration,
}

impl OrderApi {
    pub fn new(mp: MpClient, idempotency: Idempotency, mp_timeout: Duration) -> Self {
        Self {
            mp,
            idempotency,
            mp_timeout,
        }
    }

    /// How long a duplicate may wait for the first call with its request id.
    fn duplicate_wait(&self, deadline: Option<Duration>) -> Duration {
        let bound = self.mp_timeout + Duration::from_secs(1);
        deadline.map_or(bound, |d| d.min(bound))
    }
}

/// Records are keyed by RPC, so this means a corrupted or foreign record.
fn mismatched_record(rpc: &str) -> GatewayError {
    GatewayError::Internal(format!(
        "the stored {rpc} record holds another kind of outcome"
    ))
}

/// The parameters of a new order that reach MP (not `include_qr_png`).
fn order_fingerprint(order: &NewOrder) -> String {
    fingerprint(&(
        order.product_id,
        order.goods_id,
        order.order_quantity,
        order.iccid.as_ref().map(Iccid::as_str),
        order.price.as_ref().map(Price::as_str),
        order.activate,
    ))
}

fn parse_create_order(req: &CreateOrderRequest) -> Result<(RequestId, NewOrder), GatewayError> {
    let request_id = observe::request_id(&req.request_id);
    let product_id = required_id("product_id", req.product_id);
    let iccid = req.iccid.as_deref().map(Iccid::parse).transpose();
    let price = req.price.as_deref().map(Price::parse).transpose();
    let (Ok(request_id), Ok(product_id), Ok(iccid), Ok(price)) =
        (&request_id, &product_id, &iccid, &price)
    else {
        return Err(GatewayError::invalid([
            request_id.as_ref().err(),
            product_id.as_ref().err(),
            iccid.as_ref().err(),
            price.as_ref().err(),
        ]));
    };
    let order = NewOrder {
        product_id: *product_id,
        goods_id: req.goods_id,
        order_quantity: req.order_quantity,
        iccid: iccid.clone(),
        price: price.clone(),
        activate: req.activate,
    };
    Ok((request_id.clone(), order))
}

fn switch_button(action: i32) -> Result<SwitchButton, FieldViolation> {
    match SwitchAction::try_from(action) {
        Ok(SwitchAction::On) => Ok(SwitchButton::On),
        Ok(SwitchAction::Suspend) => Ok(SwitchButton::Suspend),
        Ok(SwitchAction::Restart) => Ok(SwitchButton::Restart),
        Ok(SwitchAction::Off) => Ok(SwitchButton::Off),
        Ok(SwitchAction::Unspecified) | Err(_) => Err(FieldViolation::new(
            "action",
            "must be one of SWITCH_ACTION_ON, SWITCH_ACTION_SUSPEND, SWITCH_ACTION_RESTART, SWITCH_ACTION_OFF",
        )),
    }
}

#[tonic::async_trait]
impl OrderService for OrderApi {
    async fn create_order(
        &self,
        request: Request<CreateOrderRequest>,
    ) -> Result<Response<CreateOrderResponse>, Status> {
        let deadline = caller_deadline(&request);
        let req = request.into_inner();
        let (request_id, order) = parse_create_order(&req)?;
        let wait = self.duplicate_wait(deadline);
        let fingerprint = order_fingerprint(&order);
        let (mp, id) = (self.mp.clone(), request_id.clone());
        let outcome = self
            .idempotency
            .run("CreateOrder", &request_id, fingerprint, wait, async move {
                let call = Call {
                    request_id: &id,
                    deadline,
                };
                let created = mp.create_order(&order, call).await?;
                Ok(Outcome::Created {
                    order_code: created.order_code,
                    iccid: created.iccid,
                    activation_code: created.activation_code.as_str().to_owned(),
                })
            })
            .await?;
        let Outcome::Created {
            order_code,
            iccid,
            activation_code,
        } = outcome
        else {
            return Err(mismatched_record("CreateOrder").into());
        };
        let code = ActivationCode::parse(&activation_code)
            .map_err(|e| GatewayError::Internal(format!("stored activation code {e}")))?;
        let qr_png = if req.include_qr_png {
            code.qr_png()
                .map_err(|e| GatewayError::Internal(e.to_string()))?
        } else {
            Vec::new()
        };
        Ok(Response::new(CreateOrderResponse {
            order_code,
            iccid,
            activation_code: code.as_str().to_owned(),
            smdp_address: code.smdp_address().to_owned(),
            matching_id: code.matching_id().to_owned(),
            ios_install_url: code.ios_install_url(),
            android_install_url: code.android_install_url(),
            qr_png,
            request_id: request_id.to_string(),
        }))
    }

    async fn top_up_order(
        &self,
        request: Request<TopUpOrderRequest>,
    ) -> Result<Response<TopUpOrderResponse>, Status> {
        let query = OrderQuery::parse(&request)?;
        let wait = self.duplicate_wait(query.deadline);
        let fingerprint = fingerprint(&query.order_code.as_str());
        let (mp, request) = (self.mp.clone(), query.clone());
        let outcome = self
            .idempotency
            .run(
                "TopUpOrder",
                &query.request_id,
                fingerprint,
                wait,
                async move {
                    let top_up = mp.top_up(&request.order_code, request.call()).await?;
                    Ok(Outcome::ToppedUp {
                        order_code: top_up.order_code,
                        renew_period: top_up.renew_period,
                    })
                },
            )
            .await?;
        let Outcome::ToppedUp {
            order_code,
            renew_period,
        } = outcome
        else {
            return Err(mismatched_record("TopUpOrder").into());
        };
        Ok(Response::new(TopUpOrderResponse {
            order_code,
            renew_period,
            request_id: query.request_id.to_string(),
        }))
    }

    async fn get_order_status(
        &self,
        request: Request<GetOrderStatusRequest>,
    ) -> Result<Response<GetOrderStatusResponse>, Status> {
        let query = OrderQuery::parse(&request)?;
        let packages = self
            .mp
            .order_status(&query.order_code, query.call())
            .await?;
        Ok(Response::new(GetOrderStatusResponse {
            packages,
            request_id: query.request_id.to_string(),
        }))
    }

    async fn switch_order(
        &self,
        request: Request<SwitchOrderRequest>,
    ) -> Result<Response<SwitchOrderResponse>, Status> {
        let deadline = caller_deadline(&request);
        let req = request.into_inner();
        let request_id = observe::request_id(&req.request_id);
        let order_code = OrderCode::parse(&req.order_code);
        let button = switch_button(req.action);
        let (Ok(request_id), Ok(order_code), Ok(button)) = (&request_id, &order_code, &button)
        else {
            return Err(GatewayError::invalid([
                request_id.as_ref().err(),
                order_code.as_ref().err(),
                button.as_ref().err(),
            ])
            .into());
        };
        let call = Call {
            request_id,
            deadline,
        };
        self.mp.switch_order(order_code, *button, call).await?;
        Ok(Response::new(SwitchOrderResponse {
            request_id: request_id.to_string(),
        }))
    }
}
