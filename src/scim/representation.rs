//! A resource's representation written in pieces, so that the server never
//! holds a resource's related rows (a group's members, a user's groups)
//! whole, however many there are: the attributes before them, then the rows
//! as they are read, a chunk at a time in keyset order, each projected and
//! serialised as it comes, then the attributes after them. The bytes are
//! those of the whole representation serialised at once. A single
//! resource's response (`endpoint`) and list pages (`page`) both write their
//! resources through here. No `sea_orm`: rows come through the resource's
//! [`Endpoint`].

use std::collections::{BTreeMap, HashSet};
use std::marker::PhantomData;

use actix_web::web;
use serde_json::{Map, Value};

use super::ScimState;
use super::endpoint::Endpoint;
use super::error::ScimError;
use super::projection::Projection;
use super::render::Parts;
use crate::store::mirror::Chunk;

/// Related rows read by one query: a few thousand, so a 500,000-member
/// group takes 250 queries and the server holds 2,000 of its members at a
/// time (a few hundred KiB, as rows and as text).
pub const RELATED_CHUNK: u64 = 2_000;

/// What writing one request's representations needs.
pub struct Context<E: Endpoint> {
    state: web::Data<ScimState>,
    directory_id: String,
    projection: Projection,
    /// Whether representations carry related rows: the projection wants
    /// them, and the resources can have some.
    related: bool,
    _endpoint: PhantomData<E>,
}

impl<E: Endpoint> Context<E> {
    /// `created`: the resources were created by this request (a user under a
    /// fresh id belongs to no group, so nothing is read for it).
    pub fn new(
        state: web::Data<ScimState>,
        directory_id: &str,
        projection: Projection,
        created: bool,
    ) -> Self {
        let related = projection.wants(E::RELATED) && (E::CREATED_WITH_RELATED || !created);
        Context {
            state,
            directory_id: directory_id.to_owned(),
            projection,
            related,
            _endpoint: PhantomData,
        }
    }

    /// Whether representations carry related rows.
    pub fn related(&self) -> bool {
        self.related
    }

    async fn read(&self, chunk: Chunk<'_>) -> Result<Vec<E::Related>, ScimError> {
        let conn = self.state.store.connection();
        Ok(E::related(conn, &self.directory_id, chunk).await?)
    }

    /// One chunk of one resource's related rows, after `key` (from the
    /// first when `None`).
    async fn read_one(&self, owner: &str, key: Option<&str>) -> Result<Vec<E::Related>, ScimError> {
        let owners = [owner.to_owned()];
        self.read(Chunk {
            owners: &owners,
            after_owner: None,
            after_key: key,
            limit: RELATED_CHUNK,
        })
        .await
    }
}

/// Where a resource's related rows go on after those in hand.
#[derive(Debug, Clone, PartialEq)]
enum Rest {
    /// None are left.
    Done,
    /// Those after this key (from the first when `None`).
    After(Option<String>),
}

impl Rest {
    /// What follows a chunk of one resource's rows read with
    /// [`RELATED_CHUNK`] as its limit: a short chunk was the last.
    fn after<E: Endpoint>(chunk: &[E::Related]) -> Rest {
        match chunk.last() {
            Some(last) if chunk.len() as u64 >= RELATED_CHUNK => {
                Rest::After(Some(E::related_key(last).to_owned()))
            }
            _ => Rest::Done,
        }
    }
}

/// A resource's related rows as a [`Batch`] hands them over: those in hand,
/// and where the rest begin.
pub struct Rows<E: Endpoint> {
    ready: Vec<E::Related>,
    rest: Rest,
}

/// The related rows of a batch of resources (the rows one query of a list
/// page read, or a single resource), read for all of them at once while
/// they are few: one query reads up to [`RELATED_CHUNK`] rows of the
/// resources not taken yet, in owner order, and the next is read only when
/// every row in hand was taken. A page of small groups costs a query or so
/// per chunk of groups, not one per group; a resource whose rows the batch
/// read only the start of, or has not reached (a sorted page takes its
/// resources out of id order), goes on reading its own, a chunk at a time.
/// The server holds at most one batch query's rows.
pub struct Batch<E: Endpoint> {
    /// The resources not taken yet.
    owners: Vec<String>,
    /// Rows read and not taken, by owner.
    buffer: BTreeMap<String, Vec<E::Related>>,
    /// The owner of the last row read: its rows may go on past it, and the
    /// next query starts after it.
    frontier: Option<String>,
    /// The last query read every row left.
    exhausted: bool,
}

impl<E: Endpoint> Batch<E> {
    /// A batch of these resources (a few hundred at most: one query's
    /// bind parameters).
    pub fn new(owners: Vec<String>) -> Self {
        Batch {
            owners,
            buffer: BTreeMap::new(),
            frontier: None,
            exhausted: false,
        }
    }

    /// The related rows of `owner` (one of the batch's, taken once): those
    /// the batch read, and where the rest begin.
    pub async fn take(&mut self, ctx: &Context<E>, owner: &str) -> Result<Rows<E>, ScimError> {
        if !ctx.related {
            return Ok(Rows {
                ready: Vec::new(),
                rest: Rest::Done,
            });
        }
        let reached = self.frontier.as_deref().is_some_and(|f| f >= owner);
        if self.buffer.is_empty() && !self.exhausted && !reached {
            self.fill(ctx).await?;
        }
        self.owners.retain(|o| o != owner);
        let ready = self.buffer.remove(owner).unwrap_or_default();
        let rest = match self.frontier.as_deref() {
            _ if self.exhausted => Rest::Done,
            Some(frontier) if frontier > owner => Rest::Done,
            // The last query stopped inside this owner's rows; later
            // queries start after the owner, so its rest is its own to read.
            Some(frontier) if frontier == owner => {
                Rest::After(ready.last().map(|r| E::related_key(r).to_owned()))
            }
            _ => Rest::After(None),
        };
        Ok(Rows { ready, rest })
    }

    /// Read the batch's first rows now, before any is taken: a page does
    /// before its head, so a failure there is still a SCIM error.
    pub async fn prefetch(&mut self, ctx: &Context<E>) -> Result<(), ScimError> {
        if ctx.related && self.frontier.is_none() && !self.exhausted && !self.owners.is_empty() {
            self.fill(ctx).await?;
        }
        Ok(())
    }

    /// Read the next rows of the resources not taken yet.
    async fn fill(&mut self, ctx: &Context<E>) -> Result<(), ScimError> {
        let rows = ctx
            .read(Chunk {
                owners: &self.owners,
                after_owner: self.frontier.as_deref(),
                after_key: None,
                limit: RELATED_CHUNK,
            })
            .await?;
        self.exhausted = (rows.len() as u64) < RELATED_CHUNK;
        if let Some(last) = rows.last() {
            self.frontier = Some(E::owner(last).to_owned());
        }
        for row in rows {
            self.buffer
                .entry(E::owner(&row).to_owned())
                .or_default()
                .push(row);
        }
        Ok(())
    }
}

/// A resource's representation, written a piece at a time.
pub struct Representation<E: Endpoint> {
    id: String,
    /// `{` and the attributes before the related rows, until written.
    head: Option<Vec<u8>>,
    /// The attributes after the related rows, without braces.
    after: Vec<u8>,
    shape: Shape,
    /// Related rows in hand, not written yet.
    ready: Vec<E::Related>,
    rest: Rest,
}

impl<E: Endpoint> Representation<E> {
    /// The representation of `row`, with its related rows as `rows` begin
    /// them.
    pub fn new(ctx: &Context<E>, row: &E::Row, rows: Rows<E>) -> Result<Self, ScimError> {
        let parts = E::render(&ctx.state.base_url, row);
        let (head, after, shape) = shell(&ctx.projection, E::TYPE, parts)?;
        Ok(Representation {
            id: E::id(row).to_owned(),
            head: Some(head),
            after,
            shape,
            ready: rows.ready,
            rest: rows.rest,
        })
    }

    /// The representation of one resource (a GET, or a write's answer).
    pub async fn of(ctx: &Context<E>, row: &E::Row) -> Result<Self, ScimError> {
        let id = E::id(row).to_owned();
        let rows = Batch::new(vec![id.clone()]).take(ctx, &id).await?;
        Self::new(ctx, row, rows)
    }

    /// Write the next piece into `out`: the first time, the attributes
    /// before the related rows and the rows in hand; then a chunk of rows,
    /// read now; at the end, what follows them. Reads at most one chunk;
    /// `true` once the representation is complete (it is not called again).
    pub async fn write(&mut self, ctx: &Context<E>, out: &mut Vec<u8>) -> Result<bool, ScimError> {
        if let Some(head) = self.head.take() {
            out.extend_from_slice(&head);
            for row in std::mem::take(&mut self.ready) {
                self.shape.element(ctx, &row, out)?;
            }
        }
        if let Rest::After(key) = &self.rest {
            let rows = ctx.read_one(&self.id, key.as_deref()).await?;
            self.rest = Rest::after::<E>(&rows);
            for row in &rows {
                self.shape.element(ctx, row, out)?;
            }
        }
        if self.rest != Rest::Done {
            return Ok(false);
        }
        self.shape.close(&self.after, out);
        Ok(true)
    }

    /// Whether what is left to write takes at most `room` bytes, found by
    /// reading the rest of the rows a chunk at a time without keeping them
    /// (or writing anything): a list page measures a resource too large to
    /// hold before it takes it, and then writes it by reading the rows
    /// again. Stops as soon as it knows the answer is no.
    pub async fn fits(&self, ctx: &Context<E>, room: u64) -> Result<bool, ScimError> {
        let mut shape = self.shape;
        let mut rest = self.rest.clone();
        let mut size = 0;
        let mut scratch = Vec::new();
        while let Rest::After(key) = &rest {
            let rows = ctx.read_one(&self.id, key.as_deref()).await?;
            rest = Rest::after::<E>(&rows);
            scratch.clear();
            for row in &rows {
                shape.element(ctx, row, &mut scratch)?;
            }
            size += scratch.len() as u64;
            if size > room {
                return Ok(false);
            }
        }
        scratch.clear();
        shape.close(&self.after, &mut scratch);
        Ok(size + scratch.len() as u64 <= room)
    }
}

/// Where a representation's writing stands, for the separators.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// Whether an attribute was written (the next one takes a comma).
    has_attributes: bool,
    /// Whether the related attribute's array is open (an element of it
    /// was written): it is left out, as a whole representation leaves out
    /// an empty one, until an element is.
    open: bool,
}

impl Shape {
    /// Render, project and write one related row.
    fn element<E: Endpoint>(
        &mut self,
        ctx: &Context<E>,
        row: &E::Related,
        out: &mut Vec<u8>,
    ) -> Result<(), ScimError> {
        let element = E::render_related(&ctx.state.base_url, row);
        self.write(&ctx.projection, E::RELATED, element, out)
    }

    /// Write one element of the related attribute `name` as `projection`
    /// leaves it (nothing, when nothing of it is returned).
    fn write(
        &mut self,
        projection: &Projection,
        name: &str,
        element: Value,
        out: &mut Vec<u8>,
    ) -> Result<(), ScimError> {
        let Some(element) = projection.apply_to_element(name, element) else {
            return Ok(());
        };
        if self.open {
            out.push(b',');
        } else {
            if self.has_attributes {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, name).map_err(unserialisable)?;
            out.extend_from_slice(b":[");
            self.open = true;
            self.has_attributes = true;
        }
        serde_json::to_writer(&mut *out, &element).map_err(unserialisable)
    }

    /// Close the related attribute, if open, and write `after` (the
    /// attributes after it, without braces) and the closing brace.
    fn close(&self, after: &[u8], out: &mut Vec<u8>) {
        if self.open {
            out.push(b']');
        }
        if !after.is_empty() {
            if self.has_attributes {
                out.push(b',');
            }
            out.extend_from_slice(after);
        }
        out.push(b'}');
    }
}

/// A representation's attributes as `projection` leaves them, serialised:
/// `{` and those before the related rows (no closing brace), those after
/// them (no braces), and where the writing starts.
fn shell(
    projection: &Projection,
    rt: &'static super::schema::ResourceType,
    Parts { before, after }: Parts,
) -> Result<(Vec<u8>, Vec<u8>, Shape), ScimError> {
    // Projected together, so `schemas` follows the extensions of the whole.
    let after_keys: HashSet<String> = after.keys().cloned().collect();
    let mut whole = before;
    whole.extend(after);
    projection.apply(rt, &mut whole);
    let (before, after): (Map<String, Value>, Map<String, Value>) = whole
        .into_iter()
        .partition(|(key, _)| !after_keys.contains(key));
    let mut head = serde_json::to_vec(&before).map_err(unserialisable)?;
    head.pop();
    let mut tail = serde_json::to_vec(&after).map_err(unserialisable)?;
    tail.pop();
    tail.remove(0);
    let shape = Shape {
        has_attributes: !before.is_empty(),
        open: false,
    };
    Ok((head, tail, shape))
}

fn unserialisable(err: serde_json::Error) -> ScimError {
    tracing::error!(error = %err, "a representation did not serialise");
    ScimError::internal("internal error")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::schema::{GROUP, GROUP_RESOURCE};
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn parts() -> Parts {
        let before = json!({"schemas": [GROUP], "id": "g1", "displayName": "Sales"});
        let after = json!({"meta": {"resourceType": "Group", "version": "W/\"3\""}});
        Parts {
            before: before.as_object().unwrap().clone(),
            after: after.as_object().unwrap().clone(),
        }
    }

    fn members(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| {
                let mut m = json!({"value": format!("u{i}"), "$ref": format!("https://h/Users/u{i}"), "type": "User"});
                if i % 2 == 1 {
                    m["display"] = json!(format!("User {i}"));
                }
                m
            })
            .collect()
    }

    /// The representation built whole, as before members were streamed.
    fn whole(projection: &Projection, members: &[Value]) -> Vec<u8> {
        let Parts { mut before, after } = parts();
        if !members.is_empty() {
            before.insert("members".into(), Value::Array(members.to_vec()));
        }
        before.extend(after);
        projection.apply(&GROUP_RESOURCE, &mut before);
        Value::Object(before).to_string().into_bytes()
    }

    /// The representation written in pieces.
    fn pieces(projection: &Projection, members: &[Value]) -> Vec<u8> {
        let (mut out, after, mut shape) = shell(projection, &GROUP_RESOURCE, parts()).unwrap();
        for m in members {
            shape
                .write(projection, "members", m.clone(), &mut out)
                .unwrap();
        }
        shape.close(&after, &mut out);
        out
    }

    #[rstest]
    #[case(None, None)]
    #[case(Some("members"), None)]
    #[case(Some("members.value"), None)]
    #[case(Some("members.display"), None)]
    #[case(Some("displayName"), None)]
    #[case(None, Some("members.display,meta"))]
    #[case(None, Some("meta"))]
    #[case(None, Some("displayName,members.type"))]
    #[case(Some("members.display"), Some("meta"))]
    fn members_written_one_by_one_are_the_bytes_of_the_whole_representation(
        #[case] attributes: Option<&str>,
        #[case] excluded: Option<&str>,
        #[values(0, 1, 3)] n: usize,
    ) {
        let projection = Projection::parse(&GROUP_RESOURCE, attributes, excluded).unwrap();
        let members = members(n);
        let expected = whole(&projection, &members);
        assert_eq!(
            String::from_utf8(pieces(&projection, &members)).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }
}
