//! The client commands: each is one or two RPCs and some printing.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use proto::v1 as pb;
use proto::v1::gateway_client::GatewayClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::term::{self, out};
use crate::{output, table};

pub type Client = GatewayClient<InterceptedService<Channel, Bearer>>;

/// Adds `authorization: Bearer …` to every call when a token is given.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// The `--server` value as a URL: `127.0.0.1:4470` means `http://127.0.0.1:4470`, as
/// people type it after reading the `serve` start-up line.
pub fn server_url(server: &str) -> String {
    if server.contains("://") {
        server.to_owned()
    } else {
        format!("http://{server}")
    }
}

/// The innermost cause of an error, e.g. "Connection refused (os error 111)": the layers
/// above it (transport error, connect error) tell a user nothing more.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut e = e;
    while let Some(inner) = e.source() {
        e = inner;
    }
    e.to_string()
}

pub async fn connect(server: &str, token: Option<&str>, ca: Option<&Path>) -> Result<Client> {
    let url = server_url(server);
    let mut endpoint = Channel::from_shared(url.clone())
        .map_err(|_| {
            anyhow!("--server {server:?} is not an address: give one like http://127.0.0.1:4470")
        })?
        .connect_timeout(Duration::from_secs(5));
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_enabled_roots();
        if let Some(ca) = ca {
            let pem = std::fs::read(ca)
                .with_context(|| format!("cannot read the --tls-ca file {}", ca.display()))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint.tls_config(tls)?;
    }
    // One sentence with the cause and what to do; the transport's own layers add nothing.
    let channel = endpoint.connect().await.map_err(|e| {
        anyhow!(
            "cannot reach the gateway at {url}: {}. Start one with `junction serve` (or try \
             `junction lab`), or point --server or JUNCTION_SERVER at yours",
            root_cause(&e)
        )
    })?;
    let bearer = match token {
        Some(t) => Some(
            format!("Bearer {t}")
                .parse()
                .context("the token has characters a header cannot carry")?,
        ),
        None => None,
    };
    Ok(GatewayClient::with_interceptor(channel, Bearer(bearer))
        .max_decoding_message_size(64 * 1024 * 1024))
}

pub async fn search(
    c: &mut Client,
    query: String,
    networks: Vec<String>,
    timeout: Option<u32>,
    json: bool,
) -> Result<()> {
    let req = pb::SearchRequest {
        query,
        networks,
        timeout_ms: timeout.map_or(0, |s| s.saturating_mul(1000)),
        max_items: 0,
    };
    let mut stream = c.search(req).await?.into_inner();
    let mut view = table::SearchView::default();
    // Live only on a terminal: a pipe gets the final table once, in one piece.
    let mut live = (!json && term::stdout_is_terminal()).then(table::Redraw::default);
    // Redrawn on a tick as well as on events, so that the last events before a quiet spell
    // (and the clock) show.
    let mut tick = tokio::time::interval(REDRAW);
    loop {
        let ev = tokio::select! {
            ev = stream.next() => match ev {
                Some(ev) => ev?.event,
                None => break,
            },
            _ = tick.tick(), if live.is_some() => None,
        };
        if let Some(ev) = ev {
            if json {
                out!("{}", output::search_event_json(&ev));
                continue;
            }
            view.apply(ev);
        }
        if let Some(live) = &mut live
            && live.since() >= REDRAW
        {
            live.draw(&view.live_lines(term::width(), term::height()))?;
        }
    }
    if json {
        return Ok(());
    }
    if let Some(live) = &mut live {
        live.clear()?;
    }
    for line in view.table(term::width()) {
        out!("{line}");
    }
    for line in view.status_lines() {
        eprintln!("{line}");
    }
    Ok(())
}

/// How often a live table or bar is redrawn at most: often enough to look live, rarely
/// enough not to flicker or to cost more than the search.
const REDRAW: Duration = Duration::from_millis(150);

pub fn is_link(target: &str) -> bool {
    target.starts_with("magnet:") || target.starts_with("ed2k://") || target.starts_with("urn:")
}

/// Starts (or finds: the gateway keeps one transfer per content) the transfer of a search
/// item id, a link or a .torrent file.
pub async fn start(c: &mut Client, target: &str) -> Result<pb::Transfer> {
    start_files(c, target, &[]).await
}

/// Starts a transfer of only `files` of a multi-file torrent (all when empty).
async fn start_files(c: &mut Client, target: &str, files: &[u32]) -> Result<pb::Transfer> {
    use pb::start_transfer_request::Source;
    let source = if is_link(target) {
        Source::Link(target.to_owned())
    } else if target.ends_with(".torrent") || Path::new(target).is_file() {
        let bytes = std::fs::read(target).with_context(|| format!("reading {target}"))?;
        Source::Torrent(bytes)
    } else {
        Source::ItemId(target.to_owned())
    };
    Ok(c.start_transfer(pb::StartTransferRequest {
        source: Some(source),
        networks: vec![],
        files: files.to_vec(),
    })
    .await?
    .into_inner())
}

pub async fn get(
    c: &mut Client,
    target: &str,
    files: &[u32],
    wait: bool,
    json: bool,
) -> Result<()> {
    let t = start_files(c, target, files).await?;
    if !wait {
        if json {
            out!("{}", output::transfer_json(&t));
        } else {
            out!("{}", output::transfer_line(&t));
        }
        return Ok(());
    }
    if !json {
        out!("{}", output::transfer_line(&t));
    }
    let id = t.id.clone();
    tokio::select! {
        r = wait_for(c, &t, json) => r,
        _ = tokio::signal::ctrl_c() => Err(term::Interrupted::goes_on(&id).into()),
    }
}

/// Follows one transfer to its end with a bar on stderr. Stdout gets `complete: PATH`, or
/// with `json` the transfer's final state as one object, so `| jq` reads JSON only.
async fn wait_for(c: &mut Client, t: &pb::Transfer, json: bool) -> Result<()> {
    use pb::transfer::State;
    let bar = ProgressBar::new(t.size);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {msg}")?
            .progress_chars("=> "),
    );
    bar.set_prefix(t.name.clone());
    let mut stream = c
        .watch_transfers(pb::WatchTransfersRequest { id: t.id.clone() })
        .await?
        .into_inner();
    while let Some(ev) = stream.next().await {
        let ev = ev?;
        let Some(t) = ev.transfer else { continue };
        // A magnet's size arrives with its metadata.
        bar.set_length(t.size);
        bar.set_position(t.bytes_verified);
        let shares = output::network_shares(&t);
        if shares.is_empty() {
            bar.set_prefix(t.name.clone());
        } else {
            bar.set_prefix(format!("{} [{shares}]", t.name));
        }
        // The gateway's own rate, not the bar's estimate: a paused transfer sends no more
        // events, and an estimate would stay frozen on its last value.
        bar.set_message(output::rate_and_eta(&t));
        match t.state() {
            State::Complete => {
                bar.finish();
                if json {
                    out!("{}", output::transfer_json(&t));
                } else {
                    out!("complete: {}", t.path);
                }
                return Ok(());
            }
            State::Failed => {
                bar.abandon();
                bail!("transfer {} failed: {}", t.id, t.error)
            }
            State::Cancelled => {
                bar.abandon();
                bail!("transfer {} was cancelled", t.id)
            }
            _ if ev.removed => {
                bar.abandon();
                bail!("transfer {} was removed", t.id)
            }
            _ => {}
        }
    }
    bail!("the gateway closed the stream before the transfer finished")
}

pub async fn transfers(c: &mut Client, watch: bool, json: bool) -> Result<()> {
    if !watch {
        let list = c
            .list_transfers(pb::ListTransfersRequest {})
            .await?
            .into_inner();
        for t in &list.transfers {
            if json {
                out!("{}", output::transfer_json(t));
            } else {
                out!("{}", output::transfer_line(t));
            }
        }
        if list.transfers.is_empty() && !json {
            eprintln!("no transfers; `junction get LINK` starts one");
        }
        return Ok(());
    }
    let mut stream = c
        .watch_transfers(pb::WatchTransfersRequest { id: String::new() })
        .await?
        .into_inner();
    if json || !term::stdout_is_terminal() {
        while let Some(ev) = stream.next().await {
            let ev = ev?;
            if let Some(t) = ev.transfer {
                if json {
                    out!("{}", output::transfer_json(&t));
                } else {
                    let removed = if ev.removed { " (removed)" } else { "" };
                    out!("{}{removed}", output::transfer_line(&t));
                }
            }
        }
        return Ok(());
    }
    // On a terminal: one table redrawn in place, at most every REDRAW, and once a second
    // so that a quiet transfer's row does not go stale.
    let mut all: Vec<pb::Transfer> = Vec::new();
    let mut screen = table::Redraw::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut dirty = true;
    loop {
        tokio::select! {
            ev = stream.next() => {
                let Some(ev) = ev else { break };
                let ev = ev?;
                if let Some(t) = ev.transfer {
                    all.retain(|x| x.id != t.id);
                    if !ev.removed {
                        all.push(t);
                    }
                    dirty = true;
                }
            }
            _ = tick.tick() => dirty = true,
        }
        if dirty && screen.since() >= REDRAW {
            all.sort_by_key(|t| std::cmp::Reverse(t.created_unix_ms));
            screen.draw(&table::transfers(&all, term::width(), term::height()))?;
            dirty = false;
        }
    }
    Ok(())
}

/// Lists a transfer's files, after choosing which to fetch when `only` or `all` says.
pub async fn files(
    c: &mut Client,
    id: String,
    only: Vec<u32>,
    all: bool,
    json: bool,
) -> Result<()> {
    let t = if all || !only.is_empty() {
        c.select_files(pb::SelectFilesRequest { id, files: only })
            .await?
            .into_inner()
    } else {
        c.get_transfer(pb::TransferRef { id }).await?.into_inner()
    };
    if t.files.is_empty() && !json {
        out!("{} is one file: {}", t.id, t.name);
    }
    for (i, f) in t.files.iter().enumerate() {
        if json {
            out!("{}", output::file_json(i, f));
        } else {
            out!("{}", output::file_line(i, f));
        }
    }
    Ok(())
}

pub async fn pause(c: &mut Client, id: String) -> Result<()> {
    let t = c.pause_transfer(pb::TransferRef { id }).await?.into_inner();
    out!("{}", output::transfer_line(&t));
    Ok(())
}

pub async fn resume(c: &mut Client, id: String) -> Result<()> {
    let t = c
        .resume_transfer(pb::TransferRef { id })
        .await?
        .into_inner();
    out!("{}", output::transfer_line(&t));
    Ok(())
}

pub async fn cancel(c: &mut Client, id: String, keep_data: bool) -> Result<()> {
    let t = c
        .cancel_transfer(pb::CancelTransferRequest { id, keep_data })
        .await?
        .into_inner();
    out!("{}", output::transfer_line(&t));
    Ok(())
}

pub async fn networks(c: &mut Client, json: bool) -> Result<()> {
    let list = c
        .list_networks(pb::ListNetworksRequest {})
        .await?
        .into_inner();
    for n in &list.networks {
        if json {
            out!("{}", output::network_json(n));
        } else {
            out!("{}", output::network_line(n));
        }
    }
    if list.networks.is_empty() && !json {
        eprintln!("this gateway runs no networks");
    }
    Ok(())
}

pub async fn add_endpoint(c: &mut Client, network: String, address: String) -> Result<()> {
    c.add_endpoint(pb::AddEndpointRequest { network, address })
        .await?;
    out!("added; kept across restarts (`junction endpoint list`)");
    Ok(())
}

pub async fn list_endpoints(c: &mut Client, json: bool) -> Result<()> {
    let r = c
        .list_endpoints(pb::ListEndpointsRequest {})
        .await?
        .into_inner();
    for e in &r.endpoints {
        if json {
            out!(
                "{}",
                serde_json::json!({ "network": e.network, "address": e.address })
            );
        } else {
            out!("{:<11} {}", e.network, e.address);
        }
    }
    if r.endpoints.is_empty() && !json {
        eprintln!(
            "no endpoints added; `junction endpoint add NETWORK host:port` adds one \
             (the config file's are not listed)"
        );
    }
    Ok(())
}

pub async fn remove_endpoint(c: &mut Client, network: String, address: String) -> Result<()> {
    let r = c
        .remove_endpoint(pb::RemoveEndpointRequest { network, address })
        .await?
        .into_inner();
    out!("removed: {}", r.note);
    Ok(())
}

pub async fn unshare(c: &mut Client, path: &Path) -> Result<()> {
    let path = std::path::absolute(path)?;
    let r = c
        .unshare(pb::UnshareRequest {
            path: path.to_string_lossy().into_owned(),
        })
        .await?
        .into_inner();
    for f in &r.files {
        if f.withdrawn.is_empty() {
            out!("unshared {}", f.path);
        } else {
            out!(
                "unshared {} (withdrawn from {})",
                f.path,
                f.withdrawn.join(", ")
            );
        }
        for note in &f.notes {
            out!("  {note}");
        }
    }
    Ok(())
}

pub async fn share(c: &mut Client, path: &Path) -> Result<()> {
    // The gateway usually runs on this host: send an absolute path.
    let path = std::path::absolute(path)?;
    let r = c
        .share(pb::ShareRequest {
            path: path.to_string_lossy().into_owned(),
        })
        .await?
        .into_inner();
    for f in &r.files {
        out!("{}", output::shared_line(f));
    }
    // One file: its links are what a user shares it for. A folder's would be a flood.
    if let [f] = r.files.as_slice()
        && !f.networks.is_empty()
    {
        use pb::get_links_request::Target;
        let l = c
            .get_links(pb::GetLinksRequest {
                target: Some(Target::Path(f.path.clone())),
            })
            .await?
            .into_inner();
        print_links(&l)?;
    } else if r.files.len() > 1 {
        eprintln!("`junction links FILE` prints the links of one of them");
    }
    Ok(())
}

pub async fn shares(c: &mut Client, json: bool) -> Result<()> {
    let r = c.list_shares(pb::ListSharesRequest {}).await?.into_inner();
    for f in &r.files {
        if json {
            out!("{}", output::shared_json(f));
        } else {
            out!("{}", output::shared_line(f));
        }
    }
    if r.files.is_empty() && !json {
        eprintln!("nothing shared; `junction share PATH` shares a file or folder");
    }
    Ok(())
}

pub async fn links(c: &mut Client, target: &str, torrent: Option<&Path>, json: bool) -> Result<()> {
    use pb::get_links_request::Target;
    // A file on this host is a share (the gateway usually runs here); anything else a
    // transfer id.
    let target = if Path::new(target).exists() {
        Target::Path(std::path::absolute(target)?.to_string_lossy().into_owned())
    } else {
        Target::TransferId(target.to_owned())
    };
    let l = c
        .get_links(pb::GetLinksRequest {
            target: Some(target),
        })
        .await?
        .into_inner();
    if let Some(out) = torrent {
        anyhow::ensure!(
            !l.torrent.is_empty(),
            "no .torrent yet: it is made once the file is complete and hashed"
        );
        std::fs::write(out, &l.torrent)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    if json {
        out!("{}", output::links_json(&l));
        return Ok(());
    }
    print_links(&l)?;
    if let Some(path) = torrent {
        out!("torrent written to {}", path.display());
    }
    Ok(())
}

fn print_links(l: &pb::Links) -> Result<()> {
    if !l.ed2k.is_empty() {
        out!("{}", l.ed2k);
    }
    out!("{}", l.magnet);
    Ok(())
}
