//! What a peer tells us: its pieces (bitfield, have, have-all/none), choke and interest,
//! requests and blocks, and the extension messages (BEP 10 handshake, ut_metadata, ut_pex).

use super::*;
use crate::wire::hashes::{HashRequest, HashRequestError, Hashes};

impl Peer {
    pub(super) async fn handle(&mut self, m: Message) -> Result<(), PeerError> {
        trace!(addr = %self.addr, msg = ?std::mem::discriminant(&m), "recv");
        match m {
            Message::KeepAlive | Message::Suggest(_) => {}
            Message::Port(port) => self.on_dht_port(port),
            Message::Unknown { .. } => {}
            // BEP 3: a request not yet answered is forgotten.
            Message::Cancel(r) => {
                self.uploads.retain(|q| *q != r);
                if self.upload_next.is_some_and(|(q, _)| q == r) {
                    self.upload_next = None;
                }
            }
            Message::AllowedFast(i) => {
                if !self.fast {
                    return Err(PeerError::Protocol(
                        "allowed-fast without the Fast extension",
                    ));
                }
                if self.allowed_in.len() < 64 {
                    self.allowed_in.insert(i);
                }
            }
            Message::Choke => {
                self.peer_choking = true;
                if !self.fast {
                    let keys: Vec<_> = self.outstanding.drain().map(|(k, _)| k).collect();
                    self.t.release_requests(self.conn, keys);
                }
            }
            Message::Unchoke => {
                self.peer_choking = false;
                self.last_block = Instant::now();
            }
            Message::Interested | Message::NotInterested => {
                let i = matches!(m, Message::Interested);
                let slots = self.t.ctx.config.upload_slots;
                self.t.state().on_interest(self.conn, i, slots);
            }
            Message::Have(i) => self.on_have(i)?,
            Message::Bitfield(raw) => match self.t.metadata().cloned() {
                Some(meta) => {
                    let bf = Bitfield::from_payload(&raw, meta.geometry.piece_count())?;
                    self.set_bitfield(bf);
                }
                None => self.raw_bitfield = Some(raw),
            },
            Message::HaveAll | Message::HaveNone => {
                if !self.fast {
                    return Err(PeerError::Protocol(
                        "have-all/none without the Fast extension",
                    ));
                }
                let all = matches!(m, Message::HaveAll);
                match self.t.metadata().cloned() {
                    Some(meta) => {
                        let n = meta.geometry.piece_count();
                        self.set_bitfield(if all {
                            Bitfield::full(n)
                        } else {
                            Bitfield::empty(n)
                        });
                    }
                    None => self.have_all = all,
                }
            }
            Message::Request(r) => self.serve(r).await?,
            Message::Piece(p) => self.on_piece(p).await?,
            Message::Reject(r) => {
                if !self.fast {
                    return Err(PeerError::Protocol("reject without the Fast extension"));
                }
                if self.outstanding.remove(&(r.index, r.begin)).is_some() {
                    self.t.release_requests(self.conn, [(r.index, r.begin)]);
                }
            }
            Message::Extended { id, payload } => self.on_extended(id, payload).await?,
            Message::HashRequest(r) => self.on_hash_request(r).await?,
            // A v2-only magnet's piece layers, asked for in `fill`.
            Message::Hashes(h) => {
                if let Some(meta) = self.t.metadata().cloned()
                    && !meta.take_hashes(&h)
                {
                    debug!(addr = %self.addr, index = h.request.index, "hashes that do not prove, or were not asked for");
                    if let Some(f) = lock(&meta.layer_fetch).as_mut() {
                        f.release(self.conn, Some(&h.request));
                    }
                }
            }
            Message::HashReject(r) => {
                if let Some(meta) = self.t.metadata()
                    && let Some(f) = lock(&meta.layer_fetch).as_mut()
                {
                    f.release(self.conn, Some(&r));
                }
            }
        }
        Ok(())
    }

    /// BEP 52: a request for hashes of a file's tree is answered from the piece layers
    /// we hold (checked against the file's root), with the uncle hashes that prove them;
    /// anything else is rejected, as the BEP requires an answer either way.
    async fn on_hash_request(&mut self, r: HashRequest) -> Result<(), PeerError> {
        let answer = match self.t.metadata().and_then(|m| m.v2.get()) {
            Some(v2) => v2.answer(&r),
            None => Err(HashRequestError::Root),
        };
        let reply = match answer {
            Ok(hashes) => Message::Hashes(Hashes { request: r, hashes }),
            Err(e) => {
                debug!(addr = %self.addr, base = r.base_layer, index = r.index, length = r.length, error = %e, "hash request rejected");
                Message::HashReject(r)
            }
        };
        self.send(reply).await
    }

    /// BEP 5: the peer's DHT node; ping it (once) so it may join our table.
    fn on_dht_port(&mut self, port: u16) {
        if let Some(dht) = self.t.ctx.dht.clone()
            && port != 0
            && !std::mem::replace(&mut self.dht_pinged, true)
        {
            let node = SocketAddr::new(self.addr.ip(), port);
            let span = tracing::debug_span!("dht_ping", %node);
            junction_core::task::spawn(span, self.t.cancel.clone(), async move {
                let _ = dht.query(node, crate::wire::krpc::Method::Ping).await;
            });
        }
    }

    /// A piece the peer now has; before the metadata is known, kept (boundedly) for later.
    fn on_have(&mut self, i: u32) -> Result<(), PeerError> {
        match self.t.metadata().cloned() {
            Some(meta) => {
                let vi = meta.geometry.index(i)?;
                if let Some(bf) = &mut self.bitfield {
                    if !bf.get(vi) {
                        bf.set(vi, true);
                        let seed = bf.is_complete();
                        let mut st = self.t.state();
                        st.pieces.inc_avail(vi);
                        if let Some(e) = st.peers.get_mut(&self.conn) {
                            e.seed = seed;
                        }
                    }
                } else {
                    let mut bf = Bitfield::empty(meta.geometry.piece_count());
                    bf.set(vi, true);
                    self.set_bitfield(bf);
                }
            }
            None if self.early_haves.len() < MAX_EARLY_HAVES => self.early_haves.push(i),
            None => return Err(PeerError::Protocol("too many haves")),
        }
        Ok(())
    }

    pub(super) async fn on_extended(&mut self, id: u8, payload: Bytes) -> Result<(), PeerError> {
        match id {
            0 => {
                let hs = ExtendedHandshake::decode(&payload)?;
                self.their_meta_id = hs.id_of(UT_METADATA);
                self.their_pex_id = hs.id_of(UT_PEX);
                if let Some(p) = hs.p {
                    let mut st = self.t.state();
                    if let Some(e) = st.peers.get_mut(&self.conn)
                        && e.listen.is_none()
                    {
                        e.listen = Some(SocketAddr::new(self.addr.ip(), p));
                    }
                }
                self.their_meta_size = hs.metadata_size;
                if let Some(q) = hs.reqq {
                    self.their_reqq = (q as usize).clamp(1, MAX_DEPTH);
                }
                if self.t.metadata().is_none()
                    && self.their_meta_id.is_some()
                    && let Some(size) = hs.metadata_size
                {
                    self.t.state().metadata_fetch.begin(self.conn, size);
                }
            }
            OUR_UT_METADATA => {
                let msg = match MetadataMessage::decode(payload) {
                    Ok(m) => m,
                    Err(WireError::UnknownMetadataType(_)) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                self.on_metadata(msg).await?;
            }
            OUR_UT_PEX => {
                if let Ok(pex) = PexMessage::decode(&payload) {
                    let mut st = self.t.state();
                    for (a, _) in pex.added.into_iter().take(50) {
                        if self.pex_added < 500 {
                            self.pex_added += 1;
                            st.add_known(a);
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) async fn on_metadata(&mut self, msg: MetadataMessage) -> Result<(), PeerError> {
        match msg {
            MetadataMessage::Request { piece } => {
                let Some(their) = self.their_meta_id else {
                    return Ok(());
                };
                let reply = match self.t.metadata() {
                    Some(meta) => {
                        let raw = &meta.info.raw;
                        let start = piece as usize * METADATA_PIECE_LEN as usize;
                        if start < raw.len() {
                            let end = (start + METADATA_PIECE_LEN as usize).min(raw.len());
                            MetadataMessage::Data {
                                piece,
                                total_size: raw.len() as u32,
                                data: raw.slice(start..end),
                            }
                        } else {
                            MetadataMessage::Reject { piece }
                        }
                    }
                    None => MetadataMessage::Reject { piece },
                };
                self.send(Message::Extended {
                    id: their,
                    payload: Bytes::from(reply.encode()),
                })
                .await?;
            }
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => {
                self.meta_pending = None;
                if self.t.metadata().is_some() {
                    return Ok(());
                }
                let raw = self
                    .t
                    .state()
                    .metadata_fetch
                    .data(self.conn, piece, total_size, data);
                if let Some(raw) = raw {
                    match Info::parse_verified(&raw, &self.t.info_hash) {
                        Ok(info) => {
                            debug!(info_hash = %self.t.info_hash, name = %info.name, "metadata received and verified");
                            if let Err(e) = self.t.set_metadata(info) {
                                warn!(error = %e, "cannot use the torrent");
                                *lock(&self.t.ctx.last_error) = Some(e.clone());
                                *lock(&self.t.error) = Some(e);
                                self.t.cancel.cancel();
                            }
                        }
                        Err(e) => {
                            warn!(error = %e, "metadata from peers does not match the info-hash");
                            self.t.state().metadata_fetch.failed();
                        }
                    }
                }
            }
            MetadataMessage::Reject { piece } => {
                self.meta_pending = None;
                self.t.state().metadata_fetch.rejected(self.conn, piece);
            }
        }
        Ok(())
    }

    /// Builds the peer's bitfield once the metadata is known.
    pub(super) fn materialize(&mut self) -> Result<(), PeerError> {
        let Some(meta) = self.t.metadata().cloned() else {
            return Ok(());
        };
        if self.bitfield.is_some() {
            return Ok(());
        }
        let count = meta.geometry.piece_count();
        let mut bf = if self.have_all {
            Bitfield::full(count)
        } else if let Some(raw) = self.raw_bitfield.take() {
            Bitfield::from_payload(&raw, count)?
        } else {
            Bitfield::empty(count)
        };
        for i in std::mem::take(&mut self.early_haves) {
            bf.set(meta.geometry.index(i)?, true);
        }
        self.set_bitfield(bf);
        Ok(())
    }

    pub(super) fn set_bitfield(&mut self, bf: Bitfield) {
        let mut st = self.t.state();
        if self.counted
            && let Some(old) = &self.bitfield
        {
            st.pieces.sub_avail(old);
        }
        st.pieces.add_avail(&bf);
        if let Some(e) = st.peers.get_mut(&self.conn) {
            e.seed = bf.is_complete();
        }
        self.counted = true;
        self.bitfield = Some(bf);
    }
}
