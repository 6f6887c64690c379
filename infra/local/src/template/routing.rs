//! Routing as API Gateway does it: path templates (`{id}`, greedy `{proxy+}`), the most
//! specific route first, percent-decoded parameters; and schedule rates.

/// Matches an HTTP route path template against a request path: `Some(path params)` or `None`.
///
/// `{name}` matches one non-empty segment, `{name+}` (last only) the non-empty rest of the
/// path. Literal segments match exactly (case-sensitive, as in API Gateway). A query string
/// on `path` is ignored. Parameter values are percent-decoded, as API Gateway passes them.
pub fn match_path(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let template_segments: Vec<&str> = template.strip_prefix('/')?.split('/').collect();
    let path = path.strip_prefix('/')?;
    let mut path_segments = path.split('/');
    let mut params = Vec::new();
    let last = template_segments.len() - 1;
    for (i, segment) in template_segments.iter().enumerate() {
        let param = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
        match param {
            Some(name) if i == last && name.ends_with('+') => {
                let rest: Vec<&str> = path_segments.by_ref().collect();
                let rest = rest.join("/");
                if rest.is_empty() {
                    return None;
                }
                params.push((name.trim_end_matches('+').to_owned(), percent_decode(&rest)));
                return Some(params);
            }
            Some(name) => {
                let value = path_segments.next().filter(|v| !v.is_empty())?;
                params.push((name.to_owned(), percent_decode(value)));
            }
            None => {
                if path_segments.next()? != *segment {
                    return None;
                }
            }
        }
    }
    path_segments.next().is_none().then_some(params)
}

/// Seconds between runs of a `rate(N unit)` schedule expression (`minute(s)`, `hour(s)`,
/// `day(s)`); `None` for anything else, `cron(...)` included.
pub fn rate_seconds(expression: &str) -> Option<u64> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let mut words = inner.split_whitespace();
    let count: u64 = words.next()?.parse().ok()?;
    let unit = words.next()?;
    if words.next().is_some() || count == 0 {
        return None;
    }
    let per_unit = match unit {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3_600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    count.checked_mul(per_unit)
}

/// How specific a route path is, for picking among matching routes.
pub(super) fn specificity(path: &str) -> (usize, usize) {
    let segments = path.split('/').filter(|s| !s.is_empty());
    let (mut literal, mut single) = (0, 0);
    for segment in segments {
        if segment.ends_with("+}") {
            continue;
        } else if segment.starts_with('{') {
            single += 1;
        } else {
            literal += 1;
        }
    }
    (literal, single)
}

/// `%XX` escapes decoded (a path segment or, with `+` made a space first, a query value);
/// a malformed escape stays as it is, and bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
