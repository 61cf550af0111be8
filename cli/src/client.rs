//! The client commands: each is one or two RPCs and some printing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use proto::v1 as pb;
use proto::v1::gateway_client::GatewayClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::output;

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

pub async fn connect(server: &str, token: Option<&str>, ca: Option<&Path>) -> Result<Client> {
    let mut endpoint = Channel::from_shared(server.to_owned())
        .with_context(|| format!("{server:?} is not a URL like http://127.0.0.1:4470"))?
        .connect_timeout(Duration::from_secs(5));
    if server.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_enabled_roots();
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint.tls_config(tls)?;
    }
    let channel = endpoint.connect().await.with_context(|| {
        format!("cannot reach the gateway at {server}; is `junction serve` running?")
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
    let mut progress: Vec<pb::NetworkProgress> = Vec::new();
    while let Some(ev) = stream.next().await {
        let Some(ev) = ev?.event else { continue };
        if json {
            println!("{}", output::search_event_json(&ev));
            continue;
        }
        use pb::search_event::Event;
        match ev {
            Event::Item(i) => println!("{}", output::item_line(&i, false)),
            Event::Update(i) => println!("{}", output::item_line(&i, true)),
            Event::Progress(p) => {
                progress.retain(|x| x.network != p.network);
                progress.push(p);
            }
            Event::Finished(f) => {
                eprintln!("\n{} items in {} ms", f.items, f.elapsed_ms);
                for p in &progress {
                    eprintln!("{}", output::progress_line(p));
                }
            }
        }
    }
    Ok(())
}

fn is_link(target: &str) -> bool {
    target.starts_with("magnet:") || target.starts_with("ed2k://") || target.starts_with("urn:")
}

/// Starts (or finds: the gateway keeps one transfer per content) the transfer of a search
/// item id, a link or a .torrent file.
async fn start(c: &mut Client, target: &str) -> Result<pb::Transfer> {
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
    })
    .await?
    .into_inner())
}

pub async fn get(c: &mut Client, target: &str, wait: bool, json: bool) -> Result<()> {
    let t = start(c, target).await?;
    if json {
        println!("{}", output::transfer_json(&t));
    } else {
        println!("{}", output::transfer_line(&t));
    }
    if wait {
        wait_for(c, &t).await?;
    }
    Ok(())
}

async fn wait_for(c: &mut Client, t: &pb::Transfer) -> Result<()> {
    use pb::transfer::State;
    let bar = ProgressBar::new(t.size);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )?
        .progress_chars("=> "),
    );
    bar.set_message(t.name.clone());
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
            bar.set_message(t.name.clone());
        } else {
            bar.set_message(format!("{} [{shares}]", t.name));
        }
        match t.state() {
            State::Complete => {
                bar.finish();
                println!("complete: {}", t.path);
                return Ok(());
            }
            State::Failed => bail!("transfer failed: {}", t.error),
            State::Cancelled => bail!("transfer was cancelled"),
            _ if ev.removed => bail!("transfer was removed"),
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
                println!("{}", output::transfer_json(t));
            } else {
                println!("{}", output::transfer_line(t));
            }
        }
        if list.transfers.is_empty() && !json {
            eprintln!("no transfers");
        }
        return Ok(());
    }
    let mut stream = c
        .watch_transfers(pb::WatchTransfersRequest { id: String::new() })
        .await?
        .into_inner();
    while let Some(ev) = stream.next().await {
        let ev = ev?;
        if let Some(t) = ev.transfer {
            if json {
                println!("{}", output::transfer_json(&t));
            } else {
                println!(
                    "{}{}",
                    output::transfer_line(&t),
                    if ev.removed { " (removed)" } else { "" }
                );
            }
        }
    }
    Ok(())
}

pub async fn pause(c: &mut Client, id: String) -> Result<()> {
    let t = c.pause_transfer(pb::TransferRef { id }).await?.into_inner();
    println!("{}", output::transfer_line(&t));
    Ok(())
}

pub async fn resume(c: &mut Client, id: String) -> Result<()> {
    let t = c
        .resume_transfer(pb::TransferRef { id })
        .await?
        .into_inner();
    println!("{}", output::transfer_line(&t));
    Ok(())
}

pub async fn cancel(c: &mut Client, id: String, keep_data: bool) -> Result<()> {
    let t = c
        .cancel_transfer(pb::CancelTransferRequest { id, keep_data })
        .await?
        .into_inner();
    println!("{}", output::transfer_line(&t));
    Ok(())
}

/// `target` is a transfer id, or a link or .torrent whose transfer is started (or found) first,
/// so a file can be streamed while it downloads with one command.
pub async fn cat(
    c: &mut Client,
    target: String,
    offset: u64,
    length: u64,
    out: Option<PathBuf>,
) -> Result<()> {
    let id = if is_link(&target) || target.ends_with(".torrent") {
        start(c, &target).await?.id
    } else {
        target
    };
    let mut stream = c
        .read_content(pb::ReadContentRequest {
            transfer_id: id,
            offset,
            length,
        })
        .await?
        .into_inner();
    let mut sink: Box<dyn Write> = match &out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    while let Some(chunk) = stream.next().await {
        sink.write_all(&chunk?.data)?;
    }
    sink.flush()?;
    Ok(())
}

pub async fn networks(c: &mut Client, json: bool) -> Result<()> {
    let list = c
        .list_networks(pb::ListNetworksRequest {})
        .await?
        .into_inner();
    for n in &list.networks {
        if json {
            println!("{}", output::network_json(n));
        } else {
            println!("{}", output::network_line(n));
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
    println!("added");
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
        println!("{}", output::shared_line(f));
    }
    Ok(())
}

pub async fn shares(c: &mut Client, json: bool) -> Result<()> {
    let r = c.list_shares(pb::ListSharesRequest {}).await?.into_inner();
    for f in &r.files {
        if json {
            println!("{}", output::shared_json(f));
        } else {
            println!("{}", output::shared_line(f));
        }
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
        println!("{}", output::links_json(&l));
        return Ok(());
    }
    if !l.ed2k.is_empty() {
        println!("{}", l.ed2k);
    }
    println!("{}", l.magnet);
    if let Some(out) = torrent {
        println!("torrent written to {}", out.display());
    }
    Ok(())
}
