//! `PUT /api/chat/{chatId}/settings`: the organizer changes the turn mode, the assistant, the
//! extensions or the blocklist of a running chat (`chat.settings.updated`); answers the new state.

use realtime_domain::chat::settings::{self, SettingsPatch};
use realtime_domain::ids::ChatId;
use realtime_domain::Deps;
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let chat_id: ChatId = http::path_id(&req, "chatId")?;
    let patch: SettingsPatch = http::json_body(&req)?;
    let state = settings::update(&deps, &user, &chat_id, patch, &http::cause(&req, &user)).await?;
    Ok(http::json(200, &state))
}
