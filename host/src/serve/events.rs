//! A scan's live event stream, as Server-Sent Events: every record (its
//! `id` is the record's number in the scan), a progress event about once a
//! second while it runs, and an `end` event when it has ended. The records
//! are read from the result store, so a client that reconnects with
//! `Last-Event-ID` (or `?after=N`) gets exactly the records after the last
//! one it saw: no gap, nothing twice; a finished scan's stream replays and
//! ends. The same events go over WebSocket (`/v1/scans/{id}/ws`), one
//! JSON text message each.

use super::api::ApiError;
use super::{Shared, no_scan, scan_view, store_error};
use crate::store::{RecordFilter, Status};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::ws::{Message, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::{Duration, Instant};

/// Records read from the store at a time.
const PAGE: usize = 1000;

/// How often a running scan's store is read again when nothing new was.
const POLL: Duration = Duration::from_millis(200);

/// How often a running scan's progress is sent.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Where a stream starts.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    /// Start after this record (as `Last-Event-ID` does; the header wins).
    after: Option<i64>,
}

/// One event of a scan's stream, before it is framed for SSE or
/// WebSocket.
struct Item {
    /// `record`, `progress`, `end` or `error`.
    name: &'static str,
    /// The record's number, for records.
    id: Option<i64>,
    /// The event's JSON.
    data: String,
}

impl Item {
    fn sse(self) -> Event {
        let event = Event::default().event(self.name).data(self.data);
        match self.id {
            Some(id) => event.id(id.to_string()),
            None => event,
        }
    }

    /// `{"event": NAME, "id": N, "data": {...}}` (no `id` but for records).
    fn ws(self) -> String {
        let id = self.id.map(|n| format!("\"id\":{n},")).unwrap_or_default();
        format!("{{\"event\":\"{}\",{id}\"data\":{}}}", self.name, self.data)
    }
}

/// What a stream has read and has yet to send.
struct Cursor {
    service: Shared,
    id: i64,
    /// The last record sent.
    after: i64,
    pending: VecDeque<Item>,
    ended: bool,
    progress_sent: Option<Instant>,
}

/// Follow a scan: its records as they are stored, its progress, its end.
#[utoipa::path(get, path = "/v1/scans/{id}/events",
    params(("id" = i64, Path, description = "The scan's number"), EventsQuery,
           ("Last-Event-ID" = Option<String>, Header, description = "The number of the last record seen: the stream goes on after it")),
    responses(
        (status = 200, description = "text/event-stream: `record` events (data: the record, as JSON Lines has it, with its `id`), `progress` events (data: units_done, units_known, per_second, elapsed_s, eta_s, connects), and one `end` event (data: the scan) before the stream closes", content_type = "text/event-stream", body = Object),
        (status = 400, description = "A bad parameter", body = ApiError),
        (status = 404, description = "No such scan", body = ApiError)
    ))]
pub(super) async fn scan_events(
    State(service): State<Shared>,
    id: Result<Path<i64>, PathRejection>,
    query: Result<Query<EventsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Path(id) = id.map_err(super::bad_path)?;
    let Query(query) = query.map_err(super::bad_query)?;
    // The header is the browser's own resume; a value that is not a record
    // number (none was ever sent) starts from the beginning.
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let cursor = Cursor::open(service, id, last.or(query.after)).await?;
    let stream = futures::stream::unfold(cursor, |mut cursor| async move {
        let item = cursor.next().await?;
        Some((Ok(item.sse()), cursor))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

impl Cursor {
    /// A cursor on scan `id` after record `after` (from the start when
    /// `None`); 404 when there is no such scan.
    async fn open(service: Shared, id: i64, after: Option<i64>) -> Result<Cursor, ApiError> {
        scan_view(&service, id).await?;
        Ok(Cursor {
            service,
            id,
            after: after.unwrap_or(0),
            pending: VecDeque::new(),
            ended: false,
            progress_sent: None,
        })
    }

    /// The next event; `None` once the `end` (or an `error`) was given.
    async fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.ended {
                return None;
            }
            if let Err(e) = self.read().await {
                // The stream cannot say more than this; it ends.
                self.ended = true;
                self.pending.push_back(Item {
                    name: "error",
                    id: None,
                    data: serde_json::json!({"error": e.error}).to_string(),
                });
            }
        }
    }

    /// Queue what is new: records, else the end, else progress (after a
    /// pause, so an idle scan is not read in a tight loop).
    async fn read(&mut self) -> Result<(), ApiError> {
        let (id, after) = (self.id, self.after);
        // The status is read before the records: a scan that has ended
        // stored all its records before it recorded its end, so when it is
        // seen ended and no record follows, there are none left.
        let (running, page) = self
            .service
            .read(move |store| {
                let Some(status) = store.scan_status(id).map_err(store_error)? else {
                    return Err(no_scan(id));
                };
                let page = store
                    .records_page(id, after, PAGE, &RecordFilter::default())
                    .map_err(store_error)?;
                Ok((status == Status::Running, page))
            })
            .await?;
        if let Some((last, _)) = page.last() {
            self.after = *last;
        }
        for (n, record) in page.iter() {
            self.pending.push_back(Item {
                name: "record",
                id: Some(*n),
                data: super::with_id(*n, record),
            });
        }
        if !page.is_empty() {
            return Ok(());
        }
        if !running {
            let view = scan_view(&self.service, id).await?;
            let data = serde_json::to_string(&view).map_err(store_error)?;
            self.pending.push_back(Item {
                name: "end",
                id: None,
                data,
            });
            self.ended = true;
            return Ok(());
        }
        if self
            .progress_sent
            .is_none_or(|at| at.elapsed() >= PROGRESS_EVERY)
            && let Some(progress) = self.progress()
        {
            self.progress_sent = Some(Instant::now());
            self.pending.push_back(Item {
                name: "progress",
                id: None,
                data: progress,
            });
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
        Ok(())
    }

    /// The scan's progress as JSON, while this daemon runs it.
    fn progress(&self) -> Option<String> {
        let progress = self.service.progress(self.id)?;
        serde_json::to_string(&progress).ok()
    }
}

/// The same stream over WebSocket: one JSON text message per event,
/// `{"event": "record", "id": N, "data": {...}}` (`id` for records only),
/// then a close frame after the `end`. `?after=N` starts after record N.
#[utoipa::path(get, path = "/v1/scans/{id}/ws",
    params(("id" = i64, Path, description = "The scan's number"), EventsQuery),
    responses(
        (status = 101, description = "Switching Protocols: then the scan's events as JSON text messages (`event`: record, progress, end or error; `id` for records; `data`), and a close after the end"),
        (status = 400, description = "A bad parameter, or not a WebSocket handshake", body = ApiError),
        (status = 404, description = "No such scan", body = ApiError),
        (status = 426, description = "The connection cannot be upgraded", body = ApiError)
    ))]
pub(super) async fn scan_ws(
    State(service): State<Shared>,
    id: Result<Path<i64>, PathRejection>,
    query: Result<Query<EventsQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<axum::response::Response, ApiError> {
    let Path(id) = id.map_err(super::bad_path)?;
    let Query(query) = query.map_err(super::bad_query)?;
    let upgrade = upgrade.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let mut cursor = Cursor::open(service, id, query.after).await?;
    Ok(upgrade.on_upgrade(move |mut socket| async move {
        while let Some(item) = cursor.next().await {
            if socket.send(Message::Text(item.ws().into())).await.is_err() {
                // The client went away; it reconnects with `?after=`.
                return;
            }
        }
        let _ = socket.send(Message::Close(None)).await;
    }))
}
