//! Fetching from a peer: keeping interest and the request pipeline right, taking blocks
//! into the picker, hashing a finished piece off the reactor, and the magnet's metadata.

use super::*;

impl Peer {
    /// Keeps interest accurate and the request pipeline full.
    pub(super) async fn fill(&mut self) -> Result<(), PeerError> {
        let Some(meta) = self.t.metadata().cloned() else {
            return self.fill_metadata().await;
        };
        if matches!(
            self.t.storage,
            crate::engine::storage::Storage::MetadataOnly
        ) {
            return Ok(()); // only the metadata was wanted
        }
        if meta.awaits_layers() {
            return self.fill_hashes(&meta).await;
        }
        if self.bitfield.is_none() {
            self.materialize()?;
        }
        let Some(bf) = self.bitfield.as_ref() else {
            return Ok(());
        };
        // Pieces wholly left out are never picked: taken out of what the peer offers here,
        // rather than refused one by one by the transfer on every pick.
        let offered;
        let bf = match self.t.storage.left_out(&meta.geometry, &mut self.left_out) {
            Some(out) => {
                let mut b = bf.clone();
                b.clear_all_of(out);
                offered = b;
                &offered
            }
            None => bf,
        };
        let (want, blocks) = {
            let mut st = self.t.state();
            let want = st.pieces.wants_from(bf);
            let depth = self.depth.min(self.their_reqq);
            let need = depth.saturating_sub(self.outstanding.len());
            let ready = want && self.am_interested && need >= depth / 4;
            let storage = &self.t.storage;
            let geometry = &meta.geometry;
            let mut claim = |i: crate::wire::piece::ValidPieceIndex| {
                storage.claim_piece(geometry.piece_offset(i), u64::from(geometry.piece_len(i)))
            };
            // Where a reader waits, as a piece index.
            let reader = storage
                .priority()
                .map(|o| (o / u64::from(meta.info.piece_length.max(1))) as u32);
            let blocks = if ready && !self.peer_choking {
                st.pieces
                    .pick(self.conn, bf, need, &meta.geometry, reader, &mut claim)
            } else if ready && !self.allowed_in.is_empty() {
                // Choked: only the allowed-fast pieces it has (BEP 6).
                let mut only = Bitfield::empty(bf.piece_count());
                for i in &self.allowed_in {
                    if let Ok(vi) = meta.geometry.index(*i)
                        && bf.get(vi)
                    {
                        only.set(vi, true);
                    }
                }
                st.pieces
                    .pick(self.conn, &only, need, &meta.geometry, reader, &mut claim)
            } else {
                Vec::new()
            };
            (want, blocks)
        };
        if want != self.am_interested {
            self.am_interested = want;
            self.send(if want {
                Message::Interested
            } else {
                Message::NotInterested
            })
            .await?;
        }
        if !blocks.is_empty() {
            let mut out = BytesMut::with_capacity(blocks.len() * 17);
            let now = Instant::now();
            for b in blocks {
                self.outstanding.insert((b.index().get(), b.begin()), now);
                Message::Request(b.into()).encode(&mut out);
            }
            if self.outstanding.len() == out.len() / 17 {
                self.last_block = now; // a fresh pipeline: time from now
            }
            self.tx
                .send((out.freeze(), false))
                .await
                .map_err(|_| PeerError::Closed("writer gone"))?;
        }
        Ok(())
    }

    /// A v2-only magnet: its piece layers are asked for (BEP 52 hash requests, any choke
    /// state) before any piece, since none could be checked without them. A run asked of
    /// a peer that does not answer within 20 s goes to another.
    async fn fill_hashes(
        &mut self,
        meta: &crate::engine::torrent::Metadata,
    ) -> Result<(), PeerError> {
        let next = lock(&meta.layer_fetch)
            .as_mut()
            .and_then(|f| f.next(self.conn));
        match next {
            Some(r) => self.send(Message::HashRequest(r)).await,
            None => Ok(()),
        }
    }

    pub(super) async fn fill_metadata(&mut self) -> Result<(), PeerError> {
        let (Some(their), Some(size)) = (self.their_meta_id, self.their_meta_size) else {
            return Ok(());
        };
        if self.meta_pending.is_some() {
            return Ok(());
        }
        let next = {
            let mut st = self.t.state();
            st.metadata_fetch.begin(self.conn, size);
            st.metadata_fetch.next(self.conn, size)
        };
        if let Some(piece) = next {
            self.meta_pending = Some(Instant::now());
            self.send(Message::Extended {
                id: their,
                payload: Bytes::from(MetadataMessage::Request { piece }.encode()),
            })
            .await?;
        }
        Ok(())
    }

    pub(super) async fn on_piece(&mut self, p: PieceBlock) -> Result<(), PeerError> {
        let Some(meta) = self.t.metadata().cloned() else {
            return Err(PeerError::Protocol("piece before metadata"));
        };
        let vb = p.validate(&meta.geometry)?;
        if self.outstanding.remove(&(p.index, p.begin)).is_none() {
            // Not asked of this peer, or cancelled since: neither stored nor counted, so
            // nobody can fill a piece others are sending with junk and get them banned.
            return Ok(());
        }
        let n = p.data.len() as u64;
        self.counters.down.fetch_add(n, Ordering::Relaxed);
        self.t.downloaded.fetch_add(n, Ordering::Relaxed);
        self.window += n;
        self.last_block = Instant::now();
        let res = self.t.state().pieces.on_block(self.conn, vb, &p.data);
        match res {
            OnBlock::Ignored => {}
            OnBlock::Stored { cancel } => {
                if cancel {
                    let _ = self.t.events.send(Event::Cancel {
                        block: vb,
                        except: self.conn,
                    });
                }
            }
            OnBlock::Complete {
                index,
                data,
                contributors,
                cancel,
            } => {
                if cancel {
                    let _ = self.t.events.send(Event::Cancel {
                        block: vb,
                        except: self.conn,
                    });
                }
                // Hash and store off the reactor, bounded by the hasher permits, so this
                // connection keeps reading while the piece is checked.
                let permit = self
                    .t
                    .ctx
                    .hashers
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| PeerError::Closed("shutting down"))?;
                let t = self.t.clone();
                let addr = self.addr;
                tokio::task::spawn_blocking(move || {
                    complete_piece(&t, &meta, index, data, &contributors, addr);
                    drop(permit);
                });
            }
        }
        Ok(())
    }

    pub(super) async fn on_event(&mut self, e: Event) -> Result<(), PeerError> {
        match e {
            Event::Have(i) => {
                // A request still out for a piece we now have (another peer or network
                // delivered it) is cancelled.
                let stale: Vec<(u32, u32)> = self
                    .outstanding
                    .keys()
                    .filter(|k| k.0 == i)
                    .copied()
                    .collect();
                for key in stale {
                    self.outstanding.remove(&key);
                    let block = self.t.metadata().and_then(|m| {
                        let len = m.geometry.piece_len(m.geometry.index(key.0).ok()?);
                        let n = len.checked_sub(key.1)?.min(BLOCK_LEN);
                        m.geometry.block(key.0, key.1, n).ok()
                    });
                    if let Some(block) = block {
                        self.send(Message::Cancel(block.into())).await?;
                    }
                }
                let theirs = self
                    .t
                    .metadata()
                    .and_then(|m| m.geometry.index(i).ok())
                    .is_some_and(|vi| self.bitfield.as_ref().is_some_and(|b| b.get(vi)));
                if !theirs {
                    self.send(Message::Have(i)).await?;
                }
            }
            // Pieces a resumed transfer already holds are announced with haves.
            Event::MetadataReady => self.resync().await?,
            Event::Cancel { block, except } => {
                let key = (block.index().get(), block.begin());
                if except != self.conn && self.outstanding.remove(&key).is_some() {
                    self.t.release_requests(self.conn, [key]);
                    self.send(Message::Cancel(block.into())).await?;
                }
            }
        }
        Ok(())
    }
}

/// Checks an assembled piece, stores it if good, and bans whoever sent a bad one.
fn complete_piece(
    t: &Torrent,
    meta: &crate::engine::torrent::Metadata,
    index: crate::wire::piece::ValidPieceIndex,
    data: Vec<u8>,
    contributors: &[ConnId],
    addr: SocketAddr,
) {
    let hash_ok = meta.verify_piece(index, &data);
    let stored = hash_ok
        && match t
            .storage
            .store_verified(meta.geometry.piece_offset(index), &data)
        {
            Ok(()) => true,
            Err(junction_core::SinkError::Closed) => {
                t.cancel.cancel();
                false
            }
            Err(e) => {
                warn!(error = %e, piece = index.get(), "cannot store a verified piece");
                false
            }
        };
    if hash_ok && !stored {
        // Right bytes the disk would not take (full, say, or the transfer closed): the
        // piece is wanted again, and neither its senders nor the check are blamed.
        let mut st = t.state();
        st.pieces.checked(index, false);
        st.pieces.recycle(data);
        return;
    }
    if !hash_ok {
        warn!(%addr, piece = index.get(), "piece failed its hash check");
    }
    let blame: &[ConnId] = if hash_ok { &[] } else { contributors };
    let kill = t.finish_piece(index, stored, blame);
    let mut st = t.state();
    st.pieces.recycle(data);
    for k in kill {
        if let Some(e) = st.peers.get(&k) {
            e.kill.cancel();
        }
    }
}
