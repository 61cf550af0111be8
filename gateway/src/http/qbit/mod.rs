//! A qBittorrent-compatible download client (WebUI API v2 under `/api/v2/`), enough for
//! Sonarr, Radarr and Prowlarr to accept Junction as their torrent client and track what
//! they send it. A transfer is one "torrent" whatever its networks; its hash is its
//! info-hash, real or synthetic ([`super::synthetic_btih`]).
//!
//! Logging in: `auth/login` with the gateway's token as the password (any user name) sets
//! the `SID` cookie; a gateway without a token (on loopback only) lets any login in. An
//! `Authorization: Bearer TOKEN` header works too. Everything else answers 403 until then,
//! as qBittorrent does, which is how the apps know to log in.

pub mod book;
mod torrents;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AppState, HttpError, query_pairs};
use book::BookError;

/// What the front says it is: qBittorrent 4.6 (WebUI API 2.9), which every app supports;
/// its state names (`pausedDL`, `stalledUP`) are the ones they all know.
const APP_VERSION: &str = "v4.6.7";
const WEBAPI_VERSION: &str = "2.9.3";
/// Largest request body: a few `.torrent` files.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Fields at most in one request (hashes lists are in one field).
const MAX_FIELDS: usize = 64;
/// Sessions remembered at once, and how long an idle one lasts (qBittorrent's default).
const MAX_SESSIONS: usize = 256;
const SESSION_IDLE: Duration = Duration::from_secs(3600);

/// Logged-in sessions, by SID.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    fn open(&self) -> String {
        let sid = format!("{:032x}", rand::random::<u128>());
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        m.retain(|_, seen| now.duration_since(*seen) < SESSION_IDLE);
        if m.len() >= MAX_SESSIONS
            && let Some(oldest) = m.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone())
        {
            m.remove(&oldest);
        }
        m.insert(sid.clone(), now);
        sid
    }

    /// Whether the SID is live, refreshing it.
    fn touch(&self, sid: &str) -> bool {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match m.get_mut(sid) {
            Some(seen) if seen.elapsed() < SESSION_IDLE => {
                *seen = Instant::now();
                true
            }
            Some(_) => {
                m.remove(sid);
                false
            }
            None => false,
        }
    }

    fn close(&self, sid: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(sid);
    }
}

/// A request's parameters, from the query and a form or multipart body, and its uploads.
#[derive(Debug, Default)]
pub(super) struct Params {
    fields: Vec<(String, String)>,
    /// `.torrent` uploads: (file name, bytes).
    files: Vec<(String, Bytes)>,
}

impl Params {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn required(&self, name: &str) -> Result<&str, HttpError> {
        self.get(name)
            .ok_or_else(|| HttpError::BadRequest(format!("missing parameter {name}")))
    }

    pub(super) fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }
}

/// `/api/v2/{method}`, any HTTP method: qBittorrent 4 takes GET for reads and POST for
/// changes, and clients differ in which they use, so both are served.
pub(super) async fn api(
    State(s): State<AppState>,
    Path(method): Path<String>,
    req: Request,
) -> Response {
    match call(&s, &method, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn call(s: &AppState, method: &str, req: Request) -> Result<Response, HttpError> {
    let headers = req.headers().clone();
    match method {
        "auth/login" => {
            let p = params(req).await?;
            return Ok(login(s, &p));
        }
        "auth/logout" => {
            if let Some(sid) = sid(&headers) {
                s.sessions.close(&sid);
            }
            return Ok(text("Ok."));
        }
        _ => {}
    }
    if !logged_in(s, &headers) {
        return Err(HttpError::Forbidden(
            "Forbidden: log in first (POST /api/v2/auth/login with the gateway's token as the password), or send `Authorization: Bearer TOKEN`".into(),
        ));
    }
    let p = params(req).await?;
    let reply = match method {
        "app/version" => text(APP_VERSION),
        "app/webapiVersion" => text(WEBAPI_VERSION),
        "app/buildInfo" => json_reply(json!({
            "qt": "", "libtorrent": "", "boost": "", "openssl": "", "zlib": "",
            "bitness": usize::BITS,
            "junction": env!("CARGO_PKG_VERSION"),
        })),
        "app/preferences" => json_reply(preferences(s)),
        "app/defaultSavePath" => text(&downloads_dir(s)),
        "transfer/info" => json_reply(torrents::transfer_info(s)),
        "torrents/info" => json_reply(torrents::info(s, &p)?),
        "torrents/properties" => json_reply(torrents::properties(s, &p)?),
        "torrents/files" => json_reply(torrents::files(s, &p)?),
        "torrents/filePrio" => torrents::file_prio(s, &p).map(|()| text(""))?,
        "torrents/add" => text(&torrents::add(s, &p)?),
        "torrents/delete" => torrents::delete(s, &p).map(|()| text(""))?,
        "torrents/pause" | "torrents/stop" => torrents::pause(s, &p, true).map(|()| text(""))?,
        "torrents/resume" | "torrents/start" => torrents::pause(s, &p, false).map(|()| text(""))?,
        "torrents/categories" => {
            let all: serde_json::Map<String, Value> = s
                .book
                .categories()
                .into_iter()
                .map(|c| (c.name.clone(), json!(c)))
                .collect();
            json_reply(Value::Object(all))
        }
        "torrents/createCategory" | "torrents/editCategory" => {
            let name = p.required("category")?;
            let save = p.get("savePath").unwrap_or("");
            if method == "torrents/editCategory" {
                if !s.book.has_category(name) {
                    return Err(HttpError::Conflict(format!("no category {name:?}")));
                }
                s.book.remove_category(name).map_err(book_error)?;
            }
            s.book
                .create_category(name, save, false)
                .map_err(book_error)?;
            text("")
        }
        "torrents/removeCategories" => {
            for name in p.required("categories")?.split('\n') {
                s.book.remove_category(name.trim()).map_err(book_error)?;
            }
            text("")
        }
        "torrents/setCategory" => torrents::set_category(s, &p).map(|()| text(""))?,
        // Asked by the apps for options Junction has no counterpart of (queue positions,
        // share limits, tags, forced start); accepted so an add does not fail on them.
        "torrents/topPrio"
        | "torrents/bottomPrio"
        | "torrents/setShareLimits"
        | "torrents/setForceStart"
        | "torrents/addTags"
        | "torrents/removeTags"
        | "torrents/createTags" => text(""),
        "torrents/tags" => json_reply(json!([])),
        _ => {
            return Err(HttpError::NotFound(format!(
                "no such method /api/v2/{method}; this gateway serves app/*, auth/*, and torrents/ info, properties, files, add, delete, pause, resume, stop, start, categories, createCategory, editCategory, removeCategories, setCategory"
            )));
        }
    };
    Ok(reply)
}

fn login(s: &AppState, p: &Params) -> Response {
    let expected = s.gw.config.token.as_deref().filter(|t| !t.is_empty());
    let ok = match expected {
        // Without a token the gateway serves loopback only, where anyone may use it.
        None => true,
        Some(t) => p
            .get("password")
            .is_some_and(|given| crate::api::constant_time_eq(given.as_bytes(), t.as_bytes())),
    };
    if !ok {
        // qBittorrent's answer to a wrong password: 200 with "Fails.", no cookie.
        return text("Fails.");
    }
    let sid = s.sessions.open();
    let mut r = text("Ok.");
    if let Ok(v) = HeaderValue::from_str(&format!("SID={sid}; HttpOnly; SameSite=Strict; path=/")) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn logged_in(s: &AppState, headers: &HeaderMap) -> bool {
    let token = s.gw.config.token.as_deref().filter(|t| !t.is_empty());
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let (Some(b), Some(t)) = (bearer, token)
        && crate::api::constant_time_eq(b.as_bytes(), t.as_bytes())
    {
        return true;
    }
    sid(headers).is_some_and(|sid| s.sessions.touch(&sid))
}

fn sid(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("SID=").map(str::to_owned))
}

/// The query's parameters, then the body's: a form, or multipart (fields and `.torrent`
/// files), bounded in size and count.
async fn params(req: Request) -> Result<Params, HttpError> {
    let mut p = Params {
        fields: query_pairs(req.uri().query().unwrap_or(""))
            .take(MAX_FIELDS)
            .collect(),
        files: Vec::new(),
    };
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ctype.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| HttpError::BadRequest(format!("bad multipart body: {e}")))?;
        let mut total = 0usize;
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| HttpError::BadRequest(format!("bad multipart body: {e}")))?
        {
            if p.fields.len() + p.files.len() >= MAX_FIELDS {
                return Err(HttpError::BadRequest(format!(
                    "more than {MAX_FIELDS} fields in one request"
                )));
            }
            let name = field.name().unwrap_or("").to_owned();
            let file = field.file_name().map(str::to_owned);
            let data = field
                .bytes()
                .await
                .map_err(|e| HttpError::BadRequest(format!("bad multipart field {name}: {e}")))?;
            total += data.len();
            if total > MAX_BODY {
                return Err(too_large());
            }
            match file {
                Some(f) if name == "torrents" || !f.is_empty() && name != "urls" => {
                    p.files.push((f, data));
                }
                _ => p
                    .fields
                    .push((name, String::from_utf8_lossy(&data).into_owned())),
            }
        }
    } else {
        let body = axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| too_large())?;
        if !body.is_empty() {
            let body = String::from_utf8_lossy(&body);
            p.fields.extend(query_pairs(&body).take(MAX_FIELDS));
        }
    }
    Ok(p)
}

fn too_large() -> HttpError {
    HttpError::BadRequest(format!(
        "the request body is larger than {} MiB",
        MAX_BODY >> 20
    ))
}

fn book_error(e: BookError) -> HttpError {
    match e {
        BookError::Empty => HttpError::BadRequest("Category cannot be empty".into()),
        // qBittorrent answers 409 to an invalid or existing category.
        BookError::Invalid(_) | BookError::Exists(_) | BookError::Full => {
            HttpError::Conflict(e.to_string())
        }
        BookError::Store(e) => HttpError::Gateway(e),
    }
}

fn text(body: &str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        body.to_owned(),
    )
        .into_response()
}

fn json_reply(v: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// Where finished files go.
fn downloads_dir(s: &AppState) -> String {
    s.gw.config
        .data_dir
        .join("downloads")
        .to_string_lossy()
        .into_owned()
}

/// The preferences the apps read: the save path, and no ratio or seeding-time limits and
/// no queueing (Junction has neither), so they never wait on one.
fn preferences(s: &AppState) -> Value {
    json!({
        "save_path": downloads_dir(s),
        "temp_path_enabled": false,
        "temp_path": "",
        "max_ratio_enabled": false,
        "max_ratio": -1,
        "max_ratio_act": 0,
        "max_seeding_time_enabled": false,
        "max_seeding_time": -1,
        "max_inactive_seeding_time_enabled": false,
        "max_inactive_seeding_time": -1,
        "queueing_enabled": false,
        "dht": true,
        "pex": true,
        "auto_tmm_enabled": false,
        "start_paused_enabled": false,
        "create_subfolder_enabled": false,
        "torrent_content_layout": "Original",
        "web_ui_port": 4480,
        "locale": "en",
    })
}
