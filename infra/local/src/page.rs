//! The demo page served at `/` and its modules under `/web/` (the browser client
//! `realtime.js` is the same file a frontend would import).

/// A file of `web/` by name: (content type, body).
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "index.html" => ("text/html; charset=utf-8", include_str!("../../../web/index.html")),
        "app.js" => ("text/javascript; charset=utf-8", include_str!("../../../web/app.js")),
        "realtime.js" => ("text/javascript; charset=utf-8", include_str!("../../../web/realtime.js")),
        _ => return None,
    })
}
