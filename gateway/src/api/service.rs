//! The `junction.v1.Gateway` service: thin, it checks requests and calls the gateway.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use junction_core::link;
use proto::v1 as pb;
use proto::v1::start_transfer_request::Source as StartSource;
use tokio_stream::wrappers::{BroadcastStream, ReceiverStream};
use tonic::{Request, Response, Status};

use super::convert;
use crate::search::SearchParams;
use crate::transfer::{LinkPeers, StartSpec};
use crate::{Gateway, GatewayError};

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Largest `.torrent` accepted through the API.
const MAX_TORRENT: usize = 16 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Service {
    pub(crate) gw: Gateway,
}

impl Service {
    /// Ends a response stream when the gateway stops.
    fn until_closing<T>(
        &self,
        s: impl Stream<Item = Result<T, Status>> + Send + 'static,
    ) -> Stream_<T> {
        Box::pin(s.take_until(self.gw.closing.clone().cancelled_owned()))
    }
}

#[tonic::async_trait]
impl pb::gateway_server::Gateway for Service {
    type SearchStream = Stream_<pb::SearchEvent>;
    type WatchTransfersStream = Stream_<pb::TransferEvent>;
    type ReadContentStream = Stream_<pb::ContentChunk>;

    async fn search(
        &self,
        req: Request<pb::SearchRequest>,
    ) -> Result<Response<Self::SearchStream>, Status> {
        let r = req.into_inner();
        let params = SearchParams {
            query: r.query,
            networks: r.networks,
            timeout: (r.timeout_ms > 0).then(|| Duration::from_millis(u64::from(r.timeout_ms))),
            max_items: (r.max_items > 0).then_some(r.max_items),
        };
        let rx = self.gw.hub.start(params)?;
        let stream = ReceiverStream::new(rx).map(|ev| Ok(convert::search_event(ev)));
        Ok(Response::new(self.until_closing(stream)))
    }

    async fn start_transfer(
        &self,
        req: Request<pb::StartTransferRequest>,
    ) -> Result<Response<pb::Transfer>, Status> {
        let r = req.into_inner();
        let mut spec = match r.source {
            Some(StartSource::ItemId(id)) => {
                let item = self.gw.hub.cache().get(&id).ok_or_else(|| {
                    GatewayError::NotFound(format!(
                        "no search item {id:?}; items are kept for a while after a search, search again"
                    ))
                })?;
                spec_from_item(item)
            }
            Some(StartSource::Link(text)) => {
                let t = link::parse_link(&text).map_err(GatewayError::from)?;
                spec_from_link(t)
            }
            Some(StartSource::Torrent(bytes)) => {
                if bytes.len() > MAX_TORRENT {
                    return Err(Status::invalid_argument(format!(
                        "the .torrent is {} bytes; the limit is {MAX_TORRENT}",
                        bytes.len()
                    )));
                }
                let t = link::parse_torrent(&bytes).map_err(GatewayError::from)?;
                StartSpec {
                    torrent: Some(bytes.into()),
                    ..spec_from_link(t)
                }
            }
            None => {
                return Err(Status::invalid_argument(
                    "give an item_id, a link or a torrent",
                ));
            }
        };
        spec.networks = r.networks;
        spec.files = r.files;
        let info = self.gw.start_transfer(spec)?;
        Ok(Response::new(convert::transfer(info)))
    }

    async fn get_transfer(
        &self,
        req: Request<pb::TransferRef>,
    ) -> Result<Response<pb::Transfer>, Status> {
        let info = self.gw.transfers.get(&req.into_inner().id)?;
        Ok(Response::new(convert::transfer(info)))
    }

    async fn list_transfers(
        &self,
        _req: Request<pb::ListTransfersRequest>,
    ) -> Result<Response<pb::ListTransfersResponse>, Status> {
        let transfers = self
            .gw
            .transfers
            .list()
            .into_iter()
            .map(convert::transfer)
            .collect();
        Ok(Response::new(pb::ListTransfersResponse { transfers }))
    }

    async fn watch_transfers(
        &self,
        req: Request<pb::WatchTransfersRequest>,
    ) -> Result<Response<Self::WatchTransfersStream>, Status> {
        let only = req.into_inner().id;
        // Subscribe before the snapshot so no change falls between the two.
        let rx = self.gw.transfers.subscribe();
        let snapshot: Vec<_> = if only.is_empty() {
            self.gw.transfers.list()
        } else {
            vec![self.gw.transfers.get(&only)?]
        };
        let initial = futures::stream::iter(snapshot.into_iter().map(|t| {
            Ok(pb::TransferEvent {
                transfer: Some(convert::transfer(t)),
                removed: false,
            })
        }));
        let changes = BroadcastStream::new(rx).filter_map(move |ev| {
            let out = match ev {
                Ok(ev) if only.is_empty() || ev.transfer.id == only => {
                    Some(Ok(pb::TransferEvent {
                        transfer: Some(convert::transfer(ev.transfer)),
                        removed: ev.removed,
                    }))
                }
                Ok(_) => None,
                // A slow watcher missed events; the next ones carry whole states anyway.
                Err(_) => None,
            };
            futures::future::ready(out)
        });
        Ok(Response::new(self.until_closing(initial.chain(changes))))
    }

    async fn pause_transfer(
        &self,
        req: Request<pb::TransferRef>,
    ) -> Result<Response<pb::Transfer>, Status> {
        let info = self.gw.transfers.pause(&req.into_inner().id)?;
        Ok(Response::new(convert::transfer(info)))
    }

    async fn resume_transfer(
        &self,
        req: Request<pb::TransferRef>,
    ) -> Result<Response<pb::Transfer>, Status> {
        let info = self.gw.transfers.resume(&req.into_inner().id)?;
        Ok(Response::new(convert::transfer(info)))
    }

    async fn cancel_transfer(
        &self,
        req: Request<pb::CancelTransferRequest>,
    ) -> Result<Response<pb::Transfer>, Status> {
        let r = req.into_inner();
        let info = self.gw.transfers.cancel(&r.id, r.keep_data)?;
        Ok(Response::new(convert::transfer(info)))
    }

    async fn select_files(
        &self,
        req: Request<pb::SelectFilesRequest>,
    ) -> Result<Response<pb::Transfer>, Status> {
        let r = req.into_inner();
        let info = self.gw.transfers.select_files(&r.id, &r.files)?;
        Ok(Response::new(convert::transfer(info)))
    }

    async fn read_content(
        &self,
        req: Request<pb::ReadContentRequest>,
    ) -> Result<Response<Self::ReadContentStream>, Status> {
        let r = req.into_inner();
        let rx = self
            .gw
            .transfers
            .read(&r.transfer_id, r.offset, r.length)
            .await?;
        let stream = ReceiverStream::new(rx).map(|chunk| {
            chunk
                .map(|(offset, data)| pb::ContentChunk { offset, data })
                .map_err(Status::from)
        });
        Ok(Response::new(self.until_closing(stream)))
    }

    async fn list_networks(
        &self,
        _req: Request<pb::ListNetworksRequest>,
    ) -> Result<Response<pb::ListNetworksResponse>, Status> {
        let shares = self.gw.shares.list()?;
        let networks = self
            .gw
            .networks
            .iter()
            .map(|n| {
                let id = n.id().as_str();
                let mut out = convert::network(id, n.status(), n.capabilities());
                let offered = shares.iter().filter(|s| s.networks.iter().any(|x| x == id));
                for s in offered {
                    out.files_offered += 1;
                    out.bytes_offered += s.size;
                }
                out
            })
            .collect();
        Ok(Response::new(pb::ListNetworksResponse { networks }))
    }

    async fn add_endpoint(
        &self,
        req: Request<pb::AddEndpointRequest>,
    ) -> Result<Response<pb::AddEndpointResponse>, Status> {
        let r = req.into_inner();
        self.gw.endpoints.add(&r.network, &r.address).await?;
        Ok(Response::new(pb::AddEndpointResponse {}))
    }

    async fn list_endpoints(
        &self,
        _req: Request<pb::ListEndpointsRequest>,
    ) -> Result<Response<pb::ListEndpointsResponse>, Status> {
        let endpoints = self
            .gw
            .endpoints
            .list()?
            .into_iter()
            .map(|e| pb::Endpoint {
                network: e.network,
                address: e.address,
            })
            .collect();
        Ok(Response::new(pb::ListEndpointsResponse { endpoints }))
    }

    async fn remove_endpoint(
        &self,
        req: Request<pb::RemoveEndpointRequest>,
    ) -> Result<Response<pb::RemoveEndpointResponse>, Status> {
        let r = req.into_inner();
        let done = self.gw.endpoints.remove(&r.network, &r.address).await?;
        Ok(Response::new(pb::RemoveEndpointResponse {
            stopped: done.stopped,
            note: done.note,
        }))
    }

    async fn share(
        &self,
        req: Request<pb::ShareRequest>,
    ) -> Result<Response<pb::ShareResponse>, Status> {
        let path = req.into_inner().path;
        if path.is_empty() {
            return Err(Status::invalid_argument("give a file or folder to share"));
        }
        let files = self
            .gw
            .shares
            .share(std::path::Path::new(&path), &[])
            .await?;
        let files = files.into_iter().map(convert::shared).collect();
        Ok(Response::new(pb::ShareResponse { files }))
    }

    async fn list_shares(
        &self,
        _req: Request<pb::ListSharesRequest>,
    ) -> Result<Response<pb::ListSharesResponse>, Status> {
        let files = self
            .gw
            .shares
            .list()?
            .into_iter()
            .map(convert::shared)
            .collect();
        Ok(Response::new(pb::ListSharesResponse { files }))
    }

    async fn unshare(
        &self,
        req: Request<pb::UnshareRequest>,
    ) -> Result<Response<pb::UnshareResponse>, Status> {
        let path = req.into_inner().path;
        if path.is_empty() {
            return Err(Status::invalid_argument("give a shared file or folder"));
        }
        let files = self
            .gw
            .shares
            .unshare(std::path::Path::new(&path))
            .await?
            .into_iter()
            .map(|u| pb::UnsharedFile {
                path: u.path.to_string_lossy().into_owned(),
                withdrawn: u.withdrawn,
                notes: u.notes,
            })
            .collect();
        Ok(Response::new(pb::UnshareResponse { files }))
    }

    async fn get_links(
        &self,
        req: Request<pb::GetLinksRequest>,
    ) -> Result<Response<pb::Links>, Status> {
        use crate::links::{Target, links};
        use pb::get_links_request::Target as T;
        let target = req.into_inner().target;
        let l = match &target {
            Some(T::TransferId(id)) if !id.is_empty() => links(&self.gw, Target::Transfer(id))?,
            Some(T::Path(p)) if !p.is_empty() => {
                links(&self.gw, Target::Share(std::path::Path::new(p)))?
            }
            _ => {
                return Err(Status::invalid_argument(
                    "give a transfer id or the path of a shared file",
                ));
            }
        };
        Ok(Response::new(convert::links(l)))
    }
}

/// A transfer of a search item, from every network it was found on.
pub(crate) fn spec_from_item(item: crate::search::Item) -> StartSpec {
    StartSpec {
        name: item.name,
        size: Some(item.size),
        content: item.content,
        sources: item.sources,
        ..Default::default()
    }
}

pub(crate) fn spec_from_link(t: link::LinkTarget) -> StartSpec {
    let peer_kinds = t.peer_kinds();
    let name = t
        .name
        .unwrap_or_else(|| t.id.urns().first().cloned().unwrap_or_default());
    StartSpec {
        name,
        size: t.id.size,
        // Peers a link names go to the networks that fetch by their hash kind.
        link_peers: LinkPeers {
            kinds: peer_kinds,
            // `ip:port`; a host name in a link is not looked up (nothing is dialled by name).
            addresses: t.peers.iter().filter_map(|p| p.parse().ok()).collect(),
        },
        trackers: t.trackers,
        content: t.id,
        ..Default::default()
    }
}
