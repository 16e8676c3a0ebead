use std::time::{Duration, Instant};

use tonic::{Request, Response, Status};

use super::requests::{Identified, OrderQuery, OrderRequest, RequestIdLookup, SwitchRequest};
use super::{caller_deadline, parse};
use crate::cache::ProductCatalogue;
use crate::domain::{ActivationCode, FieldViolation, Iccid, Price, RequestId, qr_png};
use crate::error::GatewayError;
use crate::idempotency::{Idempotency, IdempotencyError, Outcome, RunError, fingerprint};
use crate::mp::{Call, MpClient, NewOrder};
use crate::proto::get_order_by_request_id_response::Outcome as StoredResponse;
use crate::proto::order_service_server::OrderService;
use crate::proto::{
    CreateOrderRequest, CreateOrderResponse, GetOrderByRequestIdRequest,
    GetOrderByRequestIdResponse, GetOrderStatusRequest, GetOrderStatusResponse, SwitchOrderRequest,
    SwitchOrderResponse, TopUpOrderRequest, TopUpOrderResponse,
};

/// The idempotency scope of CreateOrder's records.
const CREATE_ORDER: &str = "CreateOrder";
/// The idempotency scope of TopUpOrder's records.
const TOP_UP_ORDER: &str = "TopUpOrder";

/// `linksfield.mp.v1.OrderService`.
#[derive(Clone)]
pub struct OrderApi {
    mp: MpClient,
    idempotency: Idempotency,
    /// Where an order's `order_quantity` is checked against its product's.
    catalogue: ProductCatalogue,
    /// The MP timeout: how long a duplicate waits at most for the first call.
    mp_timeout: Duration,
}

impl OrderApi {
    pub fn new(
        mp: MpClient,
        idempotency: Idempotency,
        catalogue: ProductCatalogue,
        mp_timeout: Duration,
    ) -> Self {
        Self {
            mp,
            idempotency,
            catalogue,
            mp_timeout,
        }
    }

    /// Refuses an `order_quantity` the product does not offer, before MP is
    /// called. A product missing from the catalogue, or a catalogue that
    /// cannot be had (MP down), leaves it to MP: the order is not failed for that.
    async fn check_order_quantity(
        &self,
        order: &NewOrder,
        call: Call<'_>,
    ) -> Result<(), GatewayError> {
        let Some(quantity) = order.order_quantity else {
            return Ok(());
        };
        let products = match self.catalogue.products(call, false).await {
            Ok(products) => products,
            Err(error) => {
                tracing::info!(%error, "no product catalogue to check order_quantity against; MP will judge it");
                return Ok(());
            }
        };
        match products.iter().find(|p| p.product_id == order.product_id) {
            Some(product) => offered_quantity(quantity, &product.order_quantities)
                .map_err(|violation| GatewayError::InvalidArgument(vec![violation])),
            None => Ok(()),
        }
    }

    /// How long a duplicate may wait for the first call with its request id.
    fn duplicate_wait(&self, deadline: Option<Duration>) -> Duration {
        let bound = self.mp_timeout + Duration::from_secs(1);
        // Answered before the caller's deadline, so it hears REQUEST_IN_PROGRESS.
        deadline.map_or(bound, |d| d.saturating_sub(ANSWER_MARGIN).min(bound))
    }
}

/// When to answer a caller whose order call is still running: just before
/// its deadline, so it hears ABORTED `REQUEST_IN_PROGRESS` (with RetryInfo)
/// rather than nothing; the call goes on and its outcome is recorded.
fn answer_by(started: Instant, deadline: Option<Duration>) -> Option<Instant> {
    deadline.map(|d| started + d.saturating_sub(ANSWER_MARGIN))
}

/// How long before a caller's deadline it is answered, so the answer arrives in time.
const ANSWER_MARGIN: Duration = Duration::from_millis(100);

/// Records are keyed by RPC, so this means a corrupted or foreign record.
fn mismatched_record(rpc: &str) -> GatewayError {
    GatewayError::Internal(format!(
        "the stored {rpc} record holds another kind of outcome"
    ))
}

/// An order or top-up MP may have carried out is never UNAVAILABLE (which
/// gRPC clients retry on their own, ordering twice) but OUTCOME_UNKNOWN,
/// naming the request id (also a generated one) so the caller can check.
fn unknown_outcome(request_id: &RequestId) -> impl FnOnce(RunError) -> RunError + '_ {
    move |error| match error {
        RunError::Mp(mp) if mp.outcome_unknown() => {
            tracing::warn!(error = %mp, request_id = request_id.as_str(), "the outcome of an MP order call is unknown");
            IdempotencyError::OutcomeUnknown(request_id.to_string()).into()
        }
        other => other,
    }
}

/// A PNG of MP's code, empty when there is none or it cannot be drawn: the
/// order exists either way, so the caller must still learn of it.
fn qr_image(activation_code: &str) -> Vec<u8> {
    if activation_code.is_empty() {
        return Vec::new();
    }
    qr_png(activation_code).unwrap_or_else(|error| {
        tracing::warn!(%error, "could not draw the activation code's QR PNG");
        Vec::new()
    })
}

/// `quantity` when the product offers it; a product that lists none leaves it to MP.
fn offered_quantity(quantity: u32, offered: &[u32]) -> Result<(), FieldViolation> {
    if offered.is_empty() || offered.contains(&quantity) {
        return Ok(());
    }
    let values = offered
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Err(FieldViolation::new(
        "order_quantity",
        format!("must be one of the product's order_quantities: {values}"),
    ))
}

/// CreateOrder's response for a created order, first or replayed: MP's code
/// as it came, its parts only when it has the usual `LPA:1$` shape.
fn created_response(
    order_code: String,
    iccid: String,
    activation_code: String,
    include_qr_png: bool,
    request_id: &RequestId,
) -> CreateOrderResponse {
    let lpa = ActivationCode::parse(&activation_code).ok();
    let part = |f: fn(&ActivationCode) -> String| lpa.as_ref().map(f).unwrap_or_default();
    CreateOrderResponse {
        order_code,
        iccid,
        smdp_address: part(|c| c.smdp_address().to_owned()),
        matching_id: part(|c| c.matching_id().to_owned()),
        ios_install_url: part(ActivationCode::ios_install_url),
        android_install_url: part(ActivationCode::android_install_url),
        qr_png: if include_qr_png {
            qr_image(&activation_code)
        } else {
            Vec::new()
        },
        activation_code,
        request_id: request_id.to_string(),
    }
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

#[tonic::async_trait]
impl OrderService for OrderApi {
    async fn create_order(
        &self,
        request: Request<CreateOrderRequest>,
    ) -> Result<Response<CreateOrderResponse>, Status> {
        let started = Instant::now();
        let deadline = caller_deadline(&request);
        let OrderRequest {
            request_id,
            order,
            include_qr_png,
        } = parse(request.get_ref())?;
        let call = Call {
            request_id: &request_id,
            deadline,
        };
        self.check_order_quantity(&order, call).await?;
        let wait = self.duplicate_wait(deadline);
        let fingerprint = order_fingerprint(&order);
        let (mp, id) = (self.mp.clone(), request_id.clone());
        let outcome = self
            .idempotency
            .run(
                CREATE_ORDER,
                &request_id,
                fingerprint,
                wait,
                answer_by(started, deadline),
                async move {
                    // Bounded by MP_TIMEOUT_MS only: cut short by the caller's
                    // deadline, an order MP makes would be lost (see `answer_by`).
                    let call = Call {
                        request_id: &id,
                        deadline: None,
                    };
                    let created = mp.create_order(&order, call).await?;
                    Ok(Outcome::Created {
                        order_code: created.order_code,
                        iccid: created.iccid,
                        activation_code: created.activation_code,
                    })
                },
            )
            .await
            .map_err(unknown_outcome(&request_id))?;
        let Outcome::Created {
            order_code,
            iccid,
            activation_code,
        } = outcome
        else {
            return Err(mismatched_record(CREATE_ORDER).into());
        };
        Ok(Response::new(created_response(
            order_code,
            iccid,
            activation_code,
            include_qr_png,
            &request_id,
        )))
    }

    async fn top_up_order(
        &self,
        request: Request<TopUpOrderRequest>,
    ) -> Result<Response<TopUpOrderResponse>, Status> {
        let started = Instant::now();
        let deadline = caller_deadline(&request);
        let query: OrderQuery = parse(request.get_ref())?;
        let wait = self.duplicate_wait(deadline);
        let fingerprint = fingerprint(&query.order_code.as_str());
        let (mp, request) = (self.mp.clone(), query.clone());
        let outcome = self
            .idempotency
            .run(
                TOP_UP_ORDER,
                &query.request_id,
                fingerprint,
                wait,
                answer_by(started, deadline),
                async move {
                    // Bounded by MP_TIMEOUT_MS only, as CreateOrder.
                    let top_up = mp.top_up(&request.order_code, request.call(None)).await?;
                    Ok(Outcome::ToppedUp {
                        order_code: top_up.order_code,
                        renew_period: top_up.renew_period,
                    })
                },
            )
            .await
            .map_err(unknown_outcome(&query.request_id))?;
        let Outcome::ToppedUp {
            order_code,
            renew_period,
        } = outcome
        else {
            return Err(mismatched_record(TOP_UP_ORDER).into());
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
        let deadline = caller_deadline(&request);
        let query: OrderQuery = parse(request.get_ref())?;
        let packages = self
            .mp
            .order_status(&query.order_code, query.call(deadline))
            .await?;
        Ok(Response::new(GetOrderStatusResponse {
            packages,
            request_id: query.request_id.to_string(),
        }))
    }

    async fn get_order_by_request_id(
        &self,
        request: Request<GetOrderByRequestIdRequest>,
    ) -> Result<Response<GetOrderByRequestIdResponse>, Status> {
        let RequestIdLookup { request_id } = parse(request.get_ref())?;
        let outcome = self
            .idempotency
            .lookup(&[CREATE_ORDER, TOP_UP_ORDER], &request_id)
            .await
            .map_err(GatewayError::from)?;
        let stored = match outcome {
            Outcome::Created {
                order_code,
                iccid,
                activation_code,
            } => StoredResponse::CreateOrder(created_response(
                order_code,
                iccid,
                activation_code,
                false,
                &request_id,
            )),
            Outcome::ToppedUp {
                order_code,
                renew_period,
            } => StoredResponse::TopUpOrder(TopUpOrderResponse {
                order_code,
                renew_period,
                request_id: request_id.to_string(),
            }),
        };
        Ok(Response::new(GetOrderByRequestIdResponse {
            outcome: Some(stored),
            request_id: request_id.to_string(),
        }))
    }

    async fn switch_order(
        &self,
        request: Request<SwitchOrderRequest>,
    ) -> Result<Response<SwitchOrderResponse>, Status> {
        let deadline = caller_deadline(&request);
        let switch: SwitchRequest = parse(request.get_ref())?;
        self.mp
            .switch_order(&switch.order_code, switch.button, switch.call(deadline))
            .await?;
        Ok(Response::new(SwitchOrderResponse {
            request_id: switch.request_id.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offered_quantity_passes_and_another_names_the_offered_ones() {
        assert!(offered_quantity(4, &[3, 4]).is_ok());
        let violation = offered_quantity(5, &[3, 4]).unwrap_err();
        assert_eq!(violation.field, "order_quantity");
        assert!(violation.description.ends_with("3, 4"), "{violation:?}");
    }

    #[test]
    fn a_product_that_lists_no_quantities_leaves_it_to_mp() {
        assert!(offered_quantity(7, &[]).is_ok());
    }
}
