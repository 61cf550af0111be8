//! Serving a peer: requests answered from verified pieces, under the choker and the upload
//! rate limit, and the BEP 6 allowed-fast pieces it may have while choked.

use super::*;

impl Peer {
    pub(super) async fn serve(&mut self, r: BlockRequest) -> Result<(), PeerError> {
        let Some(meta) = self.t.metadata().cloned() else {
            return self.refuse(r).await;
        };
        let vb = r.validate(&meta.geometry)?;
        let have = self.t.state().pieces.have().get(vb.index());
        let choked = self.am_choking && !self.allowed_out.contains(&r.index);
        if choked || !have || self.queued.load(Ordering::Relaxed) >= MAX_QUEUED {
            return self.refuse(r).await;
        }
        if !self.t.ctx.upload_limit.is_unlimited() {
            // Rate limited: queue it, so reading goes on and a cancel can still drop it.
            if self.uploads.len() >= MAX_QUEUED {
                return self.refuse(r).await;
            }
            self.uploads.push_back(r);
            return Ok(());
        }
        self.send_block(r).await
    }

    /// When the next queued upload may go.
    pub(super) fn upload_deadline(&self) -> Instant {
        self.upload_next.map_or_else(Instant::now, |(_, at)| at)
    }

    /// Sends the block whose time has come, then queued ones while the rate limit allows.
    pub(super) async fn send_uploads(&mut self) -> Result<(), PeerError> {
        if let Some((r, at)) = self.upload_next {
            if at > Instant::now() {
                return Ok(());
            }
            self.upload_next = None;
            self.send_block(r).await?;
        }
        while let Some(r) = self.uploads.pop_front() {
            let wait = self.t.ctx.upload_wait(u64::from(r.length));
            if !wait.is_zero() {
                self.upload_next = Some((r, Instant::now() + wait.min(MAX_RATE_PAUSE)));
                return Ok(());
            }
            self.send_block(r).await?;
        }
        Ok(())
    }

    /// Choking the peer drops what it asked for (with the Fast extension, each is rejected).
    pub(super) async fn drop_uploads(&mut self) -> Result<(), PeerError> {
        let dropped: Vec<BlockRequest> = self
            .upload_next
            .take()
            .map(|(r, _)| r)
            .into_iter()
            .chain(self.uploads.drain(..))
            .collect();
        for r in dropped {
            if !self.allowed_out.contains(&r.index) {
                self.reject(r).await?;
            } else {
                self.uploads.push_back(r);
            }
        }
        Ok(())
    }

    pub(super) async fn send_block(&mut self, r: BlockRequest) -> Result<(), PeerError> {
        let Some(meta) = self.t.metadata().cloned() else {
            return self.reject(r).await;
        };
        let vb = r.validate(&meta.geometry)?;
        let off = meta.geometry.piece_offset(vb.index()) + u64::from(vb.begin());
        match self.t.storage.read(off, vb.length() as usize) {
            Ok(data) => {
                let n = data.len() as u64;
                let msg = Message::Piece(PieceBlock {
                    index: r.index,
                    begin: r.begin,
                    data,
                });
                self.queued.fetch_add(1, Ordering::Relaxed);
                self.tx
                    .send((msg.to_bytes(), true))
                    .await
                    .map_err(|_| PeerError::Closed("writer gone"))?;
                self.counters.up.fetch_add(n, Ordering::Relaxed);
                self.t.uploaded.fetch_add(n, Ordering::Relaxed);
                self.t.ctx.bytes_out.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                warn!(error = %e, "cannot read a block to serve");
                self.reject(r).await
            }
        }
    }

    /// Refuses a request it asked for; a peer asking for what it may not have faster than
    /// the limits' request rate (choked, a piece we lack, the queue full) is dropped.
    async fn refuse(&mut self, r: BlockRequest) -> Result<(), PeerError> {
        if !self.refused.allow() {
            debug!(addr = %self.addr, "too many refused requests");
            return Err(PeerError::Protocol("too many refused requests"));
        }
        self.reject(r).await
    }

    pub(super) async fn reject(&self, r: BlockRequest) -> Result<(), PeerError> {
        if self.fast {
            self.send(Message::Reject(r)).await?;
        }
        Ok(())
    }

    /// BEP 6: a peer with (almost) nothing gets the allowed-fast set of pieces we have, so
    /// it can start before it is unchoked.
    pub(super) async fn send_allowed_fast(&mut self) -> Result<(), PeerError> {
        let (Some(meta), std::net::IpAddr::V4(ip)) = (self.t.metadata().cloned(), self.addr.ip())
        else {
            return Ok(());
        };
        if !self.fast || self.bitfield.as_ref().is_some_and(|b| b.count_ones() >= 10) {
            return Ok(());
        }
        let set = crate::wire::fast_ext::allowed_fast_set(
            ip,
            &self.t.info_hash,
            meta.geometry.piece_count(),
            crate::wire::fast_ext::DEFAULT_K,
        );
        let have = self.t.state().pieces.have().clone();
        for i in set {
            if meta.geometry.index(i).is_ok_and(|vi| have.get(vi)) && self.allowed_out.insert(i) {
                self.send(Message::AllowedFast(i)).await?;
            }
        }
        Ok(())
    }
}
