//! `GET /api/chat/{chatId}/analytics?format=json|csv`: the analytics extension's figures
//! (JSON) or its per-message rows (CSV).

use realtime_domain::chat::analytics;
use realtime_domain::ids::ChatId;
use realtime_domain::{ApiError, Deps};
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let chat_id: ChatId = http::path_id(&req, "chatId")?;
    let csv = match http::query_param(&req, "format") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::BadRequest("format must be json or csv".into())),
    };
    let report = analytics::report(&deps, &user, &chat_id).await?;
    Ok(if csv {
        http::text(200, "text/csv; charset=utf-8", report.to_csv())
    } else {
        http::json(200, &report)
    })
}
