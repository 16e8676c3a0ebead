use tonic::{Request, Response, Status};

use super::requests::{Identified, OrderQuery};
use super::{caller_deadline, parse};
use crate::mp::MpClient;
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
        let query: OrderQuery = parse(request.get_ref())?;
        let packages = self
            .mp
            .traffic(&query.order_code, query.call(deadline))
            .await?;
        Ok(Response::new(GetTrafficResponse {
            packages,
            request_id: query.request_id.to_string(),
        }))
    }

    async fn get_daily_traffic(
        &self,
        request: Request<GetDailyTrafficRequest>,
    ) -> Result<Response<GetDailyTrafficResponse>, Status> {
        let deadline = caller_deadline(&request);
        let query: OrderQuery = parse(request.get_ref())?;
        let daily = self
            .mp
            .daily_traffic(&query.order_code, query.call(deadline))
            .await?;
        Ok(Response::new(GetDailyTrafficResponse {
            request_id: query.request_id.to_string(),
            ..daily
        }))
    }
}
