//! The page served at `/`: where everything is, and how to try it.

pub fn render(connections: usize) -> String {
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>realtime-local</title>
<style>body{{font:15px system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}}code{{background:#f3f3f3;padding:.1rem .3rem}}</style></head>
<body><h1>realtime-local</h1>
<p>The whole realtime event system on one address, on the embedded adapters. Open connections: <b id="n">{connections}</b>.</p>
<ul>
<li>HTTP API: <code>/api/*</code> (mint a token: <code>POST /api/dev/token {{"sub":"alice","roles":["passenger"],"name":"Alice"}}</code>)</li>
<li>WebSocket API: <code>/ws</code> (subprotocols <code>realtime.v1, bearer.&lt;jwt&gt;</code> or <code>?token=&lt;jwt&gt;</code>)</li>
<li>API Gateway management API: <code>/@connections/{{id}}</code></li>
<li>EventBridge: <code>POST /</code> with <code>X-Amz-Target: AWSEvents.PutEvents</code></li>
</ul>
<p>See the README for a walk-through with <code>curl</code> and <code>websocat</code>.</p></body></html>"#
    )
}
