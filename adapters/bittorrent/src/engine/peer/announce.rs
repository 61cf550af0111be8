//! What we tell a peer: our pieces when the session opens and whenever we gain one, our
//! extensions, and the other peers we know (BEP 11 PEX).

use super::*;

impl Peer {
    pub(super) async fn start(&mut self) -> Result<(), PeerError> {
        let first = match self.t.metadata() {
            Some(_) => {
                let have = self.t.state().pieces.have().clone();
                let n = have.count_ones();
                if self.fast && have.is_complete() {
                    Some(Message::HaveAll)
                } else if self.fast && n == 0 {
                    Some(Message::HaveNone)
                } else if n > 0 {
                    Some(Message::Bitfield(Bytes::copy_from_slice(have.as_bytes())))
                } else {
                    None
                }
            }
            None => self.fast.then_some(Message::HaveNone),
        };
        if let Some(m) = first {
            self.send(m).await?;
        }
        self.send_allowed_fast().await?;
        if self.dht
            && let Some(port) = self
                .t
                .ctx
                .dht
                .as_ref()
                .and_then(|d| d.local_addr())
                .map(|a| a.port())
        {
            self.send(Message::Port(port)).await?;
        }
        if self.ext {
            let mut hs = ExtendedHandshake::default();
            hs.m.insert(UT_METADATA.to_owned(), OUR_UT_METADATA);
            hs.m.insert(UT_PEX.to_owned(), OUR_UT_PEX);
            let port = self.t.ctx.port.load(Ordering::Relaxed);
            hs.p = (port != 0).then_some(port);
            hs.v = Some(self.t.ctx.config.client_name.clone());
            hs.reqq = Some(MAX_QUEUED as u32);
            hs.yourip = Some(self.addr.ip());
            hs.metadata_size = self.t.metadata().map(|m| m.info.raw.len() as u32);
            self.send(Message::Extended {
                id: 0,
                payload: Bytes::from(hs.encode()),
            })
            .await?;
        }
        Ok(())
    }

    /// After missed events: pick up metadata, and re-send our bitfield as haves.
    pub(super) async fn resync(&mut self) -> Result<(), PeerError> {
        self.materialize()?;
        if let Some(meta) = self.t.metadata().cloned() {
            let have = self.t.state().pieces.have().clone();
            for i in meta.geometry.indices() {
                if have.get(i) && !self.bitfield.as_ref().is_some_and(|b| b.get(i)) {
                    self.send(Message::Have(i.get())).await?;
                }
            }
        }
        Ok(())
    }

    /// BEP 11: tells the peer which other peers we are connected to (and which left).
    pub(super) async fn send_pex(&mut self) -> Result<(), PeerError> {
        let Some(their) = self.their_pex_id else {
            return Ok(());
        };
        if self.t.metadata().is_some_and(|m| m.info.private) {
            return Ok(());
        }
        let current: std::collections::HashSet<SocketAddr> = {
            let st = self.t.state();
            st.peers
                .iter()
                .filter(|(c, _)| **c != self.conn)
                .filter_map(|(_, p)| p.listen)
                .filter(|a| *a != self.addr)
                .take(500)
                .collect()
        };
        let added: Vec<SocketAddr> = current
            .difference(&self.pex_sent)
            .take(PEX_MAX)
            .copied()
            .collect();
        let dropped: Vec<SocketAddr> = self
            .pex_sent
            .difference(&current)
            .take(PEX_MAX)
            .copied()
            .collect();
        if added.is_empty() && dropped.is_empty() {
            return Ok(());
        }
        for a in &added {
            self.pex_sent.insert(*a);
        }
        for d in &dropped {
            self.pex_sent.remove(d);
        }
        let msg = PexMessage {
            added: added
                .into_iter()
                .map(|a| (a, crate::wire::PexFlags(crate::wire::PexFlags::REACHABLE)))
                .collect(),
            dropped,
        };
        self.send(Message::Extended {
            id: their,
            payload: Bytes::from(msg.encode()),
        })
        .await
    }
}
