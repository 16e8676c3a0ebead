use tonic::{Request, Response, Status};

use super::OrderQuery;
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
        let query = OrderQuery::parse(&request)?;
        let packages = self.mp.traffic(&query.order_code, query.call()).await?;
        Ok(Response::new(GetTrafficResponse {
            packages,
            request_id: query.request_id.to_string(),
        }))
    }

    async fn get_daily_traffic(
        &self,
        request: Request<GetDailyTrafficRequest>,
    ) -> Result<Response<GetDailyTrafficResponse>, Status> {
        let query = OrderQuery::parse(&request)?;
        let daily = self
            .mp
            .daily_traffic(&query.order_code, query.call())
            .await?;
        Ok(Response::new(GetDailyTrafficResponse {
            request_id: query.request_id.to_string(),
            ..daily
        }))
    }
}
