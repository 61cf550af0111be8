//! What the adapter asks of the core: searches, pushes, shares, endpoints, shutdown.

use super::*;

impl Core {
    pub(super) fn command(&mut self, c: Command) {
        match c {
            Command::Search { query, tx } => self.search(query, tx),
            Command::SharesChanged => {
                self.send_up_tables();
                if !self.shared.cfg.ultrapeer {
                    let ups: Vec<ConnId> = self
                        .peers
                        .iter()
                        .filter(|(_, p)| p.info.ultrapeer)
                        .map(|(c, _)| *c)
                        .collect();
                    for c in ups {
                        self.send_qrp(c);
                    }
                }
            }
            Command::AddEndpoint(a) => {
                if !self.endpoints.contains(&a) {
                    self.endpoints.push_front(a);
                    self.endpoints.truncate(64);
                }
                if let SocketAddr::V4(v4) = a {
                    self.hosts.allow(&v4);
                }
                self.backoff.succeeded(&a);
                self.maintain();
            }
            Command::RemoveEndpoint { addr, reply } => {
                let _ = reply.send(self.remove_endpoint(addr));
            }
            Command::Push {
                servent,
                index,
                reply,
                routed,
            } => self.push(servent, index, reply, routed),
        }
    }

    /// A search of ours: as an ultrapeer our own dynamic query, as a leaf the query sent
    /// to our ultrapeers.
    fn search(&mut self, query: Query, tx: mpsc::Sender<RemoteHit>) {
        if self.searches.len() >= MAX_SEARCHES {
            return;
        }
        let guid = Guid::modern(rand::random());
        self.router.originate(guid, kind::QUERY);
        let sha1 = query.urns().iter().find_map(Urn::sha1);
        let now = Instant::now();
        let search = Search {
            tx,
            deadline: now + self.shared.cfg.search_timeout,
            sha1,
            hits: 0,
            last_hit: now,
            until: Until::Dq,
        };
        if !self.shared.cfg.ultrapeer {
            self.search_as_leaf(guid, query, search);
            return;
        }
        self.searches.insert(guid, search);
        let leaves = self.to_leaves(None, Header::new(guid, kind::QUERY, 1, 0, 0), &query);
        if self.start_dq(guid, query, 0, Route::Local, leaves > 0) {
            // Nobody to ask at all: done at once.
            self.finish_dq(guid);
        } else if let Some(s) = self.searches.get_mut(&guid) {
            // No dynamic query to end it: as a leaf whose ultrapeers are silent.
            s.until = Until::Ultrapeers {
                waiting: HashSet::new(),
                unsignalled: true,
            };
        }
    }

    /// A leaf's search: our ultrapeers run the dynamic query; those that read Query Done
    /// say when theirs is over.
    fn search_as_leaf(&mut self, guid: Guid, query: Query, mut search: Search) {
        let mut waiting = HashSet::new();
        let mut unsignalled = false;
        let h = Header::new(guid, kind::QUERY, self.shared.cfg.max_ttl, 0, 0);
        if let Some(b) = link::encode(h, &Message::Query(query)) {
            for (&c, p) in &self.peers {
                if p.info.ultrapeer && p.hops_flow > 0 && self.send_bytes(c, &b) {
                    if p.supported.contains(&QUERY_DONE) {
                        waiting.insert(c);
                    } else {
                        unsignalled = true;
                    }
                }
            }
        }
        if waiting.is_empty() && !unsignalled {
            // Asked nobody: done at once (dropping `tx` ends the stream).
            debug!(%guid, "search over: no ultrapeer to ask");
            return;
        }
        search.until = Until::Ultrapeers {
            waiting,
            unsignalled,
        };
        self.searches.insert(guid, search);
    }

    /// Ask `servent` to connect back with `GIV`: along the route its hits came by, else
    /// to every ultrapeer; `routed` tells which.
    fn push(
        &mut self,
        servent: Guid,
        index: u32,
        reply: oneshot::Sender<(TcpStream, BytesMut)>,
        routed: oneshot::Sender<bool>,
    ) {
        let waiting: usize = self.givs.values().map(Vec::len).sum();
        if waiting >= MAX_GIV_WAITERS {
            // Dropping `reply` and `routed` refuses: the download gives up at once.
            return;
        }
        self.givs.entry(servent).or_default().push(reply);
        let a = self.shared.my_addr();
        let push = Push {
            servent,
            index,
            ip: *a.ip(),
            port: a.port(),
            ext: ExtArea::default(),
        };
        let guid = Guid::modern(rand::random());
        self.router.originate(guid, kind::PUSH);
        let h = Header::new(guid, kind::PUSH, self.shared.cfg.max_ttl, 0, 0);
        let route = self
            .router
            .push_route(servent)
            .filter(|c| self.peers.contains_key(c));
        let _ = routed.send(route.is_some());
        let targets: Vec<ConnId> = match route {
            Some(c) => vec![c],
            _ => self
                .peers
                .iter()
                .filter(|(_, p)| p.info.ultrapeer)
                .map(|(c, _)| *c)
                .collect(),
        };
        for c in targets {
            self.send(c, h, &Message::Push(push.clone()));
        }
    }
}
