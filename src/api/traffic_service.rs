use tonic::{Request, Response, Status};

use super::{caller_deadline, parse_order_ref};
use crate::error::GatewayError;
use crate::mp::{Call, MpClient};
use crate::proto::traffic_service_server::TrafficService;
use crate::proto::{
    GetDailyTrafficRequest, GetDailyTrafficResponse, GetTrafficRequest, GetTrafficResponse,
};

/// `linksfield.mp.v1.TrafficService`.
#[derive(Debug, Clone)]
pub struct TrafficApi {
    mp: MpClient,
}

impl TrafficApi {
    pub fn new(mp: MpClient) -> Self {
        Self { mp }
    }
}

#[tonic::async_trait]
impl TrafficService for TrafficApi {
    async fn get_traffic(
        &self,
        request: Request<GetTrafficRequest>,
    ) -> Result<Response<GetTrafficResponse>, Status> {
        let deadline = caller_deadline(&request);
        let req = request.into_inner();
        let (request_id, order_code) = parse_order_ref(&req.request_id, &req.order_code)?;
        let call = Call {
            request_id: &request_id,
            deadline,
        };
        let packages = self
            .mp
            .traffic(&order_code, call)
            .await
            .map_err(GatewayError::from)?;
        Ok(Response::new(GetTrafficResponse {
            packages,
            request_id: request_id.to_string(),
        }))
    }

    async fn get_daily_traffic(
        &self,
        request: Request<GetDailyTrafficRequest>,
    ) -> Result<Response<GetDailyTrafficResponse>, Status> {
        let deadline = caller_deadline(&request);
        let req = request.into_inner();
        let (request_id, order_code) = parse_order_ref(&req.request_id, &req.order_code)?;
        let call = Call {
            request_id: &request_id,
            deadline,
        };
        let daily = self
            .mp
            .daily_traffic(&order_code, call)
            .await
            .map_err(GatewayError::from)?;
        Ok(Response::new(GetDailyTrafficResponse {
            request_id: request_id.to_string(),
            ..daily
        }))
    }
}
