//! Bringing a transfer back from its record after a restart: its verified ranges (the
//! record's, then the journal's, each re-checked against the disk), its kept metadata, and
//! whether it runs again.

use std::sync::Arc;

use super::{FileSink, Record, Result, State, Table, Transfer, TransferManager, run};

impl TransferManager {
    /// Reopens one transfer from its record; an unfinished one starts running again.
    pub(super) fn restore(&self, mut record: Record) -> Result<()> {
        record.metadata = self
            .inner
            .store
            .get::<String>(Table::Metadata, &record.id)
            .ok()
            .flatten()
            .and_then(|h| hex::decode(h).ok())
            .map(Into::into);
        let sink = FileSink::open(
            &record.path,
            &record.layout(),
            &record.skip_flags(),
            record.size,
            record.verified_set(),
            Some(&self.inner.journal_path(&record.id)),
        )?;
        sink.restore_written(record.written_set());
        if record.state == State::Complete && !sink.is_complete() {
            // The finished file was deleted or cut short: say so, and let a resume refetch it.
            record.state = State::Failed;
            record.error = Some(format!(
                "the downloaded file {} is missing or shorter than it was; resume to fetch it again",
                record.path.display()
            ));
            tracing::warn!(id = %record.id, path = %record.path.display(), "finished file missing");
        }
        let resume = matches!(record.state, State::Active | State::Queued);
        let id = record.id.clone();
        tracing::info!(%id, name = %record.name, verified = sink.verified_bytes(), "restored transfer");
        let t = Arc::new(Transfer::new(sink, record));
        self.inner.transfers.insert(id, t.clone());
        if resume {
            run::spawn(&self.inner, &t);
        } else {
            t.sink().close();
        }
        Ok(())
    }
}
