//! `torrents/*`: the gateway's transfers as qBittorrent torrents, and adding, deleting,
//! pausing and categorising them.

use std::time::{SystemTime, UNIX_EPOCH};

use junction_core::{HashKind, link};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use super::book::{self, Entry};
use super::{Params, book_error, downloads_dir};
use crate::GatewayError;
use crate::api::{spec_from_item, spec_from_link};
use crate::http::known::{synthetic_btih, without_synthetic};
use crate::http::{AppState, HttpError};
use crate::transfer::{StartSpec, State, TransferInfo};

/// Links and files in one `add` at most.
const MAX_ADD: usize = 100;
/// Largest `.torrent` accepted (the gRPC API's limit).
const MAX_TORRENT: usize = 8 * 1024 * 1024;
/// Hashes named in one request at most.
const MAX_HASHES: usize = 10_000;
/// qBittorrent's "infinite" ETA.
const ETA_UNKNOWN: u64 = 8_640_000;

/// A transfer with what the front knows of it.
struct Torrent {
    info: TransferInfo,
    entry: Entry,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The info-hash a transfer not added here is known by: its own, or the synthetic one
/// Torznab gave it, or (for content with neither basis) one made from its id.
fn derived_hash(info: &TransferInfo) -> String {
    if let Some(b) = info.content.get(HashKind::Btih) {
        return hex::encode(b);
    }
    match synthetic_btih(&info.content) {
        Some(s) => hex::encode(s),
        None => {
            let d: [u8; 20] = Sha1::digest(format!("junction transfer {}", info.id)).into();
            hex::encode(d)
        }
    }
}

/// Every transfer as a torrent; entries are made for transfers not added here and
/// completion dates stamped, so both stay stable from then on.
fn all(s: &AppState) -> Vec<Torrent> {
    let list = s.gw.transfers.list();
    s.book.retain(|id| list.iter().any(|t| t.id == id));
    list.into_iter()
        .map(|info| {
            let mut entry = s.book.entry(&info.id).unwrap_or_else(|| Entry {
                hash: derived_hash(&info),
                category: String::new(),
                added_on: (info.created_ms / 1000) as i64,
                completion_on: None,
            });
            if info.state == State::Complete && entry.completion_on.is_none() {
                entry.completion_on = Some(now());
            }
            if let Err(e) = s.book.put(&info.id, entry.clone()) {
                tracing::warn!(id = %info.id, error = %e, "could not record a qBittorrent entry");
            }
            Torrent { info, entry }
        })
        .collect()
}

/// The torrents a `hashes` parameter names (`all`, or hashes joined by `|`); unknown
/// hashes are skipped, as qBittorrent does.
fn select(s: &AppState, hashes: &str) -> Result<Vec<Torrent>, HttpError> {
    let all = all(s);
    if hashes.trim().eq_ignore_ascii_case("all") {
        return Ok(all);
    }
    let wanted: Vec<String> = hashes
        .split('|')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    if wanted.len() > MAX_HASHES {
        return Err(HttpError::BadRequest(format!(
            "more than {MAX_HASHES} hashes in one request"
        )));
    }
    Ok(all
        .into_iter()
        .filter(|t| wanted.contains(&t.entry.hash))
        .collect())
}

fn one(s: &AppState, p: &Params) -> Result<Torrent, HttpError> {
    let hash = p.required("hash")?.trim().to_ascii_lowercase();
    all(s)
        .into_iter()
        .find(|t| t.entry.hash == hash)
        .ok_or_else(|| HttpError::NotFound(format!("Torrent hash was not found: {hash}")))
}

/// qBittorrent's state name for a transfer.
fn state(info: &TransferInfo) -> &'static str {
    match info.state {
        State::Complete => "stalledUP",
        State::Paused => "pausedDL",
        State::Failed | State::Cancelled => "error",
        State::Queued => "queuedDL",
        // A magnet without a size is fetching its metadata.
        State::Active if info.content.size.is_none() => "metaDL",
        State::Active if info.rate > 0 => "downloading",
        State::Active => "stalledDL",
    }
}

fn progress(info: &TransferInfo) -> f64 {
    if info.state == State::Complete {
        1.0
    } else if info.size == 0 {
        0.0
    } else {
        info.bytes_verified as f64 / info.size as f64
    }
}

fn eta(info: &TransferInfo) -> u64 {
    match info.state {
        State::Complete => 0,
        _ if info.rate > 0 => info.size.saturating_sub(info.bytes_verified) / info.rate,
        _ => ETA_UNKNOWN,
    }
}

/// Where the file is, or will be once complete (the downloads folder).
fn content_path(s: &AppState, info: &TransferInfo) -> String {
    if info.state == State::Complete {
        info.path.to_string_lossy().into_owned()
    } else {
        std::path::Path::new(&downloads_dir(s))
            .join(&info.name)
            .to_string_lossy()
            .into_owned()
    }
}

fn view(s: &AppState, t: &Torrent) -> Value {
    let i = &t.info;
    let now = now();
    let done = i.state == State::Complete;
    let seeding_time = t.entry.completion_on.map_or(0, |c| (now - c).max(0));
    let added = t.entry.added_on;
    let mut v = json!({
        "hash": t.entry.hash,
        "infohash_v1": t.entry.hash,
        "infohash_v2": "",
        "name": i.name,
        "size": i.size,
        "total_size": i.size,
        "progress": progress(i),
        "eta": eta(i),
        "state": state(i),
        "category": t.entry.category,
        "tags": "",
        "save_path": downloads_dir(s),
        "download_path": "",
        "content_path": content_path(s, i),
        "root_path": "",
        "ratio": 0.0,
        "ratio_limit": -2,
        "max_ratio": -1,
        "seeding_time": seeding_time,
        "seeding_time_limit": -2,
        "max_seeding_time": -1,
        "inactive_seeding_time_limit": -2,
        "last_activity": if i.rate > 0 || done { now } else { added },
        "added_on": added,
        "completion_on": t.entry.completion_on.unwrap_or(-1),
        "time_active": (now - added).max(0),
    });
    // Two halves: one json! this long passes the macro recursion limit.
    let more = json!({
        "dlspeed": i.rate,
        "upspeed": 0,
        "downloaded": i.bytes_written,
        "downloaded_session": i.bytes_written,
        "uploaded": 0,
        "uploaded_session": 0,
        "amount_left": i.size.saturating_sub(i.bytes_verified),
        "completed": i.bytes_verified,
        "num_seeds": i.peers,
        "num_leechs": 0,
        "num_complete": i.peers,
        "num_incomplete": 0,
        "availability": if i.peers > 0 { 1.0 } else { 0.0 },
        "priority": 0,
        "seq_dl": false,
        "f_l_piece_prio": false,
        "force_start": false,
        "super_seeding": false,
        "auto_tmm": false,
        "private": false,
        "dl_limit": -1,
        "up_limit": -1,
        "tracker": "",
        "trackers_count": 0,
        "magnet_uri": format!("magnet:?xt=urn:btih:{}&dn={}", t.entry.hash, link::percent_encode(&i.name)),
        "networks": i.networks,
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut v, more) {
        a.extend(b);
    }
    v
}

pub(super) fn info(s: &AppState, p: &Params) -> Result<Value, HttpError> {
    let mut list = match p.get("hashes") {
        Some(h) => select(s, h)?,
        None => all(s),
    };
    if let Some(c) = p.get("category") {
        list.retain(|t| t.entry.category == c);
    }
    if let Some(f) = p.get("filter") {
        list.retain(|t| matches_filter(&t.info, f));
    }
    let mut out: Vec<Value> = list.iter().map(|t| view(s, t)).collect();
    if let Some(key) = p.get("sort") {
        out.sort_by(|a, b| compare(&a[key], &b[key]));
        if p.flag("reverse") {
            out.reverse();
        }
    }
    let offset = p
        .get("offset")
        .and_then(|o| o.parse::<i64>().ok())
        .unwrap_or(0);
    let offset = if offset < 0 {
        out.len().saturating_sub(offset.unsigned_abs() as usize)
    } else {
        (offset as usize).min(out.len())
    };
    let limit = p
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&l| l > 0)
        .unwrap_or(usize::MAX);
    Ok(Value::Array(
        out.into_iter().skip(offset).take(limit).collect(),
    ))
}

fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&y.as_f64().unwrap_or(0.0)),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

fn matches_filter(i: &TransferInfo, filter: &str) -> bool {
    let done = i.state == State::Complete;
    // A failed transfer is errored, as qBittorrent's are: neither downloading nor stalled.
    let failed = i.state == State::Failed;
    match filter {
        "downloading" => !done && !failed && i.state != State::Paused,
        "seeding" | "completed" => done,
        "paused" | "stopped" => i.state == State::Paused,
        "resumed" | "running" => i.state != State::Paused,
        "active" => i.rate > 0,
        "inactive" => i.rate == 0,
        "stalled" | "stalled_downloading" => !done && !failed && i.rate == 0,
        "stalled_uploading" => done,
        "errored" => i.state == State::Failed,
        _ => true,
    }
}

pub(super) fn properties(s: &AppState, p: &Params) -> Result<Value, HttpError> {
    let t = one(s, p)?;
    let v = view(s, &t);
    let i = &t.info;
    Ok(json!({
        "hash": t.entry.hash,
        "name": i.name,
        "save_path": v["save_path"],
        "download_path": "",
        "creation_date": t.entry.added_on,
        "addition_date": t.entry.added_on,
        "completion_date": v["completion_on"],
        "piece_size": 0,
        "pieces_have": 0,
        "pieces_num": 0,
        "comment": format!("Junction transfer {}", i.id),
        "created_by": "Junction",
        "total_size": i.size,
        "total_wasted": i.bytes_redundant,
        "total_uploaded": 0,
        "total_uploaded_session": 0,
        "total_downloaded": i.bytes_written,
        "total_downloaded_session": i.bytes_written,
        "up_limit": -1,
        "dl_limit": -1,
        "time_elapsed": v["time_active"],
        "seeding_time": v["seeding_time"],
        "nb_connections": i.peers,
        "nb_connections_limit": -1,
        "share_ratio": 0.0,
        "dl_speed": i.rate,
        "dl_speed_avg": i.rate,
        "up_speed": 0,
        "up_speed_avg": 0,
        "eta": v["eta"],
        "last_seen": v["last_activity"],
        "peers": 0,
        "peers_total": 0,
        "seeds": i.peers,
        "seeds_total": i.peers,
        "reannounce": 0,
        "is_private": false,
    }))
}

/// The transfer's files: one, or those of a multi-file torrent, each named under the
/// torrent's folder as qBittorrent names them, with its own progress; a file left out has
/// priority 0 ("do not download").
pub(super) fn files(s: &AppState, p: &Params) -> Result<Value, HttpError> {
    let t = one(s, p)?;
    let i = &t.info;
    if !i.files.is_empty() {
        let list: Vec<Value> = i
            .files
            .iter()
            .enumerate()
            .map(|(index, f)| {
                let progress = match f.size {
                    0 => 1.0,
                    n => f.bytes_verified as f64 / n as f64,
                };
                json!({
                    "index": index,
                    "name": std::path::Path::new(&i.name).join(&f.path).to_string_lossy(),
                    "size": f.size,
                    "progress": progress,
                    "priority": if f.wanted { 1 } else { 0 },
                    "is_seed": i.state == State::Complete && f.wanted,
                    "piece_range": [0, 0],
                    "availability": if i.peers > 0 { 1.0 } else { 0.0 },
                })
            })
            .collect();
        return Ok(Value::Array(list));
    }
    Ok(json!([{
        "index": 0,
        "name": i.name,
        "size": i.size,
        "progress": progress(i),
        "priority": 1,
        "is_seed": i.state == State::Complete,
        "piece_range": [0, 0],
        "availability": if i.peers > 0 { 1.0 } else { 0.0 },
    }]))
}

/// `torrents/filePrio`: priority 0 leaves the files `id` names (`0|2`) out, any other
/// (1, 6, 7) takes them in; Junction fetches every file it wants alike.
pub(super) fn file_prio(s: &AppState, p: &Params) -> Result<(), HttpError> {
    let t = one(s, p)?;
    let priority: u8 = p
        .required("priority")?
        .trim()
        .parse()
        .ok()
        .filter(|n| [0, 1, 6, 7].contains(n))
        .ok_or_else(|| HttpError::BadRequest("priority is one of 0, 1, 6, 7".into()))?;
    let ids: Vec<usize> = p
        .required("id")?
        .split('|')
        .map(|i| i.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| HttpError::BadRequest("id is file indices joined by |".into()))?;
    let count = t.info.files.len().max(1);
    if let Some(bad) = ids.iter().find(|&&i| i >= count) {
        return Err(HttpError::Conflict(format!("there is no file {bad}")));
    }
    let mut wanted: Vec<bool> = match t.info.files.is_empty() {
        true => vec![true],
        false => t.info.files.iter().map(|f| f.wanted).collect(),
    };
    for i in ids {
        wanted[i] = priority != 0;
    }
    if !wanted.contains(&true) {
        return Err(HttpError::Conflict(
            "at least one file must be wanted; delete the torrent to want none".into(),
        ));
    }
    let chosen: Vec<u32> = match wanted.iter().all(|w| *w) {
        true => Vec::new(),
        false => (0..wanted.len() as u32)
            .filter(|&i| wanted[i as usize])
            .collect(),
    };
    s.gw.transfers.select_files(&t.info.id, &chosen)?;
    Ok(())
}

/// One link or file to add, checked: what to start and the hash the app will track it by.
struct CheckedAdd {
    spec: StartSpec,
    hash: Option<String>,
}

/// `urls` (magnets, including Torznab's synthetic ones, and `ed2k://` links, one a line)
/// and `.torrent` uploads. Every one is checked before any starts, so a bad one changes
/// nothing.
pub(super) fn add(s: &AppState, p: &Params) -> Result<String, HttpError> {
    let urls: Vec<&str> = p
        .get("urls")
        .unwrap_or("")
        .split('\n')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() && p.files.is_empty() {
        return Err(HttpError::BadRequest(
            "nothing to add: give urls (magnet or ed2k:// links, one a line) or .torrent files in the field torrents".into(),
        ));
    }
    if urls.len() + p.files.len() > MAX_ADD {
        return Err(HttpError::BadRequest(format!(
            "more than {MAX_ADD} links and files in one add"
        )));
    }
    let category = p.get("category").unwrap_or("").trim();
    if !category.is_empty() {
        book::check_name(category).map_err(book_error)?;
    }
    let mut plans = Vec::with_capacity(urls.len() + p.files.len());
    for u in urls {
        plans.push(plan_link(s, u)?);
    }
    for (name, bytes) in &p.files {
        plans.push(plan_torrent(name, bytes)?);
    }
    if !category.is_empty() {
        s.book
            .create_category(category, "", true)
            .map_err(book_error)?;
    }
    let stopped = p.flag("stopped") || p.flag("paused");
    for plan in plans {
        let info = s.gw.start_transfer(plan.spec)?;
        let old = s.book.entry(&info.id);
        let entry = Entry {
            // The hash the app derived from its magnet wins: it is what it will ask for.
            hash: plan
                .hash
                .or_else(|| old.as_ref().map(|o| o.hash.clone()))
                .unwrap_or_else(|| derived_hash(&info)),
            category: if category.is_empty() {
                old.as_ref().map(|o| o.category.clone()).unwrap_or_default()
            } else {
                category.to_owned()
            },
            added_on: old.as_ref().map_or_else(now, |o| o.added_on),
            completion_on: old.and_then(|o| o.completion_on),
        };
        s.book.put(&info.id, entry).map_err(HttpError::Gateway)?;
        if stopped && info.state != State::Complete {
            s.gw.transfers.pause(&info.id)?;
        }
    }
    Ok("Ok.".into())
}

fn plan_link(s: &AppState, url: &str) -> Result<CheckedAdd, HttpError> {
    let lower = url.get(..7).unwrap_or("").to_ascii_lowercase();
    if !(lower.starts_with("magnet:") || lower.starts_with("ed2k://")) {
        return Err(HttpError::BadRequest(format!(
            "{:?} is not a magnet or ed2k:// link; Junction adds those, and .torrent files uploaded in the field torrents",
            url.chars().take(80).collect::<String>()
        )));
    }
    let target = link::parse_link(url).map_err(|e| {
        HttpError::BadRequest(format!(
            "not a valid link ({e}): {}",
            url.chars().take(80).collect::<String>()
        ))
    })?;
    let hash = target.id.get(HashKind::Btih).map(hex::encode);
    // An item a front handed out (Torznab's synthetic info-hash) starts from every
    // network it was found on; otherwise the link's own hashes, the made-up one dropped.
    if let Some(k) = target.id.get(HashKind::Btih).and_then(|b| s.known.get(b)) {
        return Ok(CheckedAdd {
            spec: spec_from_item(k.item),
            hash,
        });
    }
    let mut target = target;
    target.id = without_synthetic(&target.id);
    Ok(CheckedAdd {
        spec: spec_from_link(target),
        hash,
    })
}

fn plan_torrent(name: &str, bytes: &[u8]) -> Result<CheckedAdd, HttpError> {
    let invalid = |why: String| {
        HttpError::UnsupportedMediaType(format!(
            "Error: '{name}' is not a valid torrent file: {why}"
        ))
    };
    if bytes.len() > MAX_TORRENT {
        return Err(invalid(format!(
            "it is {} bytes; the limit is {MAX_TORRENT}",
            bytes.len()
        )));
    }
    let t = link::parse_torrent(bytes)
        .map_err(GatewayError::from)
        .map_err(|e| invalid(e.to_string()))?;
    let hash = t.id.get(HashKind::Btih).map(hex::encode);
    Ok(CheckedAdd {
        spec: StartSpec {
            torrent: Some(bytes::Bytes::copy_from_slice(bytes)),
            ..spec_from_link(t)
        },
        hash,
    })
}

/// `deleteFiles` removes the file too, finished or not.
pub(super) fn delete(s: &AppState, p: &Params) -> Result<(), HttpError> {
    let targets = select(s, p.required("hashes")?)?;
    let delete_files = p.flag("deleteFiles");
    for t in targets {
        s.gw.transfers.cancel(&t.info.id, !delete_files)?;
        // The manager keeps a finished file whatever it is told; the user asked for it gone.
        if delete_files
            && t.info.state == State::Complete
            && let Err(e) = crate::transfer::remove_data(&t.info.path)
        {
            tracing::warn!(path = %t.info.path.display(), error = %e, "could not delete a finished file");
        }
        s.book.forget(&t.info.id).map_err(HttpError::Gateway)?;
    }
    Ok(())
}

pub(super) fn pause(s: &AppState, p: &Params, pause: bool) -> Result<(), HttpError> {
    for t in select(s, p.required("hashes")?)? {
        if pause {
            // A finished transfer has nothing to pause; qBittorrent accepts it silently.
            if t.info.state != State::Complete {
                s.gw.transfers.pause(&t.info.id)?;
            }
        } else {
            s.gw.transfers.resume(&t.info.id)?;
        }
    }
    Ok(())
}

pub(super) fn set_category(s: &AppState, p: &Params) -> Result<(), HttpError> {
    let hashes = p.required("hashes")?;
    let category = p.required("category")?.trim();
    if !category.is_empty() && !s.book.has_category(category) {
        return Err(HttpError::Conflict(format!(
            "Incorrect category name: {category:?} does not exist; create it with torrents/createCategory"
        )));
    }
    for t in select(s, hashes)? {
        let entry = Entry {
            category: category.to_owned(),
            ..t.entry
        };
        s.book.put(&t.info.id, entry).map_err(HttpError::Gateway)?;
    }
    Ok(())
}

pub(super) fn transfer_info(s: &AppState) -> Value {
    let list = s.gw.transfers.list();
    json!({
        "dl_info_speed": list.iter().map(|t| t.rate).sum::<u64>(),
        "dl_info_data": list.iter().map(|t| t.bytes_written).sum::<u64>(),
        "up_info_speed": 0,
        "up_info_data": 0,
        "dl_rate_limit": 0,
        "up_rate_limit": 0,
        "dht_nodes": 0,
        "connection_status": "connected",
    })
}
