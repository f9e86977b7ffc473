//! The object store: one global, monotonically increasing resourceVersion
//! (like etcd's revision), per-object managed fields, and an event log that
//! watches replay from.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::fields::{self, FieldPath, FieldSet};
use crate::registry::ResourceType;
use crate::status::ApiError;

/// Where an object lives.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// API group.
    pub group: &'static str,
    /// Plural resource name.
    pub plural: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// `Apply` or `Update`, as in `managedFields[].operation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update (PUT) or a non-apply patch.
    Update,
}

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedEntry {
    /// Field manager.
    pub manager: String,
    /// Operation.
    pub operation: Operation,
    /// The apiVersion the manager used.
    pub api_version: String,
    /// Last time the entry changed (RFC 3339).
    pub time: String,
    /// Owned fields.
    pub fields: FieldSet,
}

/// Who writes and how: the field manager, the apiVersion of its request,
/// and whether the write is a dry run (`dryRun=All`: validated and
/// reported, nothing stored).
#[derive(Clone, Copy, Debug)]
pub struct Writer<'a> {
    /// Field manager.
    pub manager: &'a str,
    /// The apiVersion the manager used.
    pub api_version: &'a str,
    /// Report the result without storing it.
    pub dry_run: bool,
}

// === impl Writer ===

impl Writer<'_> {
    /// A fresh `managedFields` entry of this manager owning `fields`.
    fn entry(&self, operation: Operation, fields: FieldSet) -> ManagedEntry {
        ManagedEntry {
            manager: self.manager.to_owned(),
            operation,
            api_version: self.api_version.to_owned(),
            time: now(),
            fields,
        }
    }
}

// === impl ManagedEntry ===

impl ManagedEntry {
    /// How conflicts name this manager: `"meshctl"` for appliers,
    /// `"kubectl-edit" using networking.istio.io/v1` for updaters.
    pub fn label(&self) -> String {
        match self.operation {
            Operation::Apply => format!("{:?}", self.manager),
            Operation::Update => format!("{:?} using {}", self.manager, self.api_version),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "manager": self.manager,
            "operation": match self.operation { Operation::Apply => "Apply", Operation::Update => "Update" },
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields::render(&self.fields),
        })
    }
}

/// A stored object.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The object without `metadata.managedFields`.
    pub obj: Value,
    /// Its managed fields.
    pub managed: Vec<ManagedEntry>,
}

// === impl Stored ===

impl Stored {
    /// The object as served at `api_version`, with `managedFields`.
    pub fn render(&self, kind: &str, api_version: &str) -> Value {
        let mut obj = self.obj.clone();
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(kind);
        let managed: Vec<Value> = self.managed.iter().map(ManagedEntry::to_json).collect();
        if !managed.is_empty() {
            obj["metadata"]["managedFields"] = Value::Array(managed);
        }
        obj
    }

    /// `metadata.resourceVersion`.
    pub fn resource_version(&self) -> &str {
        self.obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
    }
}

/// A change, as watches see it.
#[derive(Clone, Debug)]
pub struct Change {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// `ADDED`, `MODIFIED`, `DELETED`.
    pub kind: &'static str,
    /// Which object.
    pub key: Key,
    /// The object after the change (before it, for deletes, with the new rv).
    pub object: Stored,
}

/// What a write did.
#[derive(Debug)]
pub struct Written {
    /// The resulting object.
    pub object: Stored,
    /// Whether it was created (HTTP 201).
    pub created: bool,
}

impl Written {
    /// A write that changed nothing: `object` as it was stored.
    fn unchanged(object: Stored) -> Self {
        Self {
            object,
            created: false,
        }
    }
}

/// The whole store.
#[derive(Debug, Default)]
pub struct Store {
    objects: BTreeMap<Key, Stored>,
    rv: u64,
    uid: u64,
    /// Every change, oldest first.
    pub log: Vec<Change>,
    /// Watches from a resourceVersion at or below this get 410 Gone.
    pub compacted: u64,
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = Value::Object(Map::new());
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

/// The object's content that a write can change (ignores server-set metadata).
fn content(obj: &Value) -> Value {
    let mut c = obj.clone();
    if let Some(m) = c.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "resourceVersion",
            "generation",
            "managedFields",
            "uid",
            "creationTimestamp",
        ] {
            m.remove(k);
        }
    }
    c
}

fn without_metadata(obj: &Value) -> Value {
    let mut c = obj.clone();
    if let Some(m) = c.as_object_mut() {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
    }
    c
}

// === impl Store ===

impl Store {
    /// The current global resourceVersion.
    pub fn revision(&self) -> u64 {
        self.rv
    }

    /// Reads one object.
    pub fn get(&self, key: &Key) -> Option<&Stored> {
        self.objects.get(key)
    }

    /// Objects of a type, optionally in one namespace, ordered by namespace and name.
    pub fn list(&self, rt: &ResourceType, namespace: Option<&str>) -> Vec<(&Key, &Stored)> {
        self.objects
            .iter()
            .filter(|(k, _)| {
                k.group == rt.group
                    && k.plural == rt.plural
                    && namespace.is_none_or(|ns| k.namespace == ns)
            })
            .collect()
    }

    /// Commits `stored` as a creation (`ADDED`) or an update (`MODIFIED`),
    /// or only reports it under `dry_run`.
    fn write(&mut self, key: Key, stored: Stored, created: bool, dry_run: bool) -> Written {
        let object = if dry_run {
            stored
        } else {
            self.commit(key, stored, if created { "ADDED" } else { "MODIFIED" })
        };
        Written { object, created }
    }

    fn commit(&mut self, key: Key, mut stored: Stored, kind: &'static str) -> Stored {
        self.rv += 1;
        meta_mut(&mut stored.obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.objects.insert(key.clone(), stored.clone());
        self.log.push(Change {
            rv: self.rv,
            kind,
            key,
            object: stored.clone(),
        });
        stored
    }

    fn initialise(&mut self, key: &Key, obj: &mut Value, storage_api_version: &str) {
        self.uid += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.uid);
        obj["apiVersion"] = json!(storage_api_version);
        let m = meta_mut(obj);
        m.insert("name".into(), json!(key.name));
        m.insert("namespace".into(), json!(key.namespace));
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(now()));
        m.insert("generation".into(), json!(1));
        m.remove("managedFields");
        m.remove("resourceVersion");
    }

    fn finish_update(old: &Stored, new: &mut Value) {
        let gen_ = old.obj["metadata"]["generation"].as_i64().unwrap_or(1);
        let spec_changed = without_metadata(&old.obj) != without_metadata(new);
        let keep = ["uid", "creationTimestamp"];
        let old_meta = old.obj["metadata"].clone();
        let m = meta_mut(new);
        for k in keep {
            if let Some(v) = old_meta.get(k) {
                m.insert(k.into(), v.clone());
            }
        }
        m.remove("managedFields");
        m.insert(
            "generation".into(),
            json!(if spec_changed { gen_ + 1 } else { gen_ }),
        );
        if let Some(status) = old.obj.get("status") {
            new["status"] = status.clone();
        } else if let Some(o) = new.as_object_mut() {
            o.remove("status");
        }
    }

    /// Creates an object (`POST`).
    pub fn create(
        &mut self,
        rt: &ResourceType,
        key: Key,
        mut obj: Value,
        by: Writer<'_>,
    ) -> Result<Written, ApiError> {
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(rt, &key.name));
        }
        self.initialise(&key, &mut obj, &rt.api_version(rt.versions[0]));
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
        let stored = Stored {
            managed: vec![by.entry(Operation::Update, fields::field_set(&obj))],
            obj,
        };
        Ok(self.write(key, stored, true, by.dry_run))
    }

    /// Replaces an object (`PUT`, and the result of a merge patch): the
    /// fields that changed move to `manager`'s `Update` entry.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        key: Key,
        mut obj: Value,
        by: Writer<'_>,
        require_rv: bool,
    ) -> Result<Written, ApiError> {
        let Some(old) = self.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(rt, &key.name));
        };
        let sent_rv = obj["metadata"]["resourceVersion"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        match sent_rv {
            None if require_rv => {
                return Err(ApiError::invalid(
                    rt,
                    &key.name,
                    &[crate::status::Cause {
                        reason: "FieldValueInvalid".into(),
                        message: "Invalid value: 0x0: must be specified for an update".into(),
                        field: "metadata.resourceVersion".into(),
                    }],
                ));
            }
            Some(rv) if rv != old.resource_version() => {
                return Err(ApiError::modified(rt, &key.name));
            }
            _ => {}
        }
        obj["apiVersion"] = old.obj["apiVersion"].clone();
        {
            let m = meta_mut(&mut obj);
            m.insert("name".into(), json!(key.name));
            m.insert("namespace".into(), json!(key.namespace));
        }
        Self::finish_update(&old, &mut obj);
        let changed = fields::changed(&content(&old.obj), &content(&obj));
        let mut managed = old.managed.clone();
        for e in &mut managed {
            e.fields.retain(|p| !changed.iter().any(|c| c.overlaps(p)));
        }
        let now_set = fields::field_set(&obj);
        let mine: FieldSet = changed.intersection(&now_set).cloned().collect();
        match managed
            .iter_mut()
            .find(|e| e.manager == by.manager && e.operation == Operation::Update)
        {
            Some(e) if !mine.is_empty() => {
                e.fields.extend(mine);
                e.time = now();
                e.api_version = by.api_version.to_owned();
            }
            Some(_) => {}
            None if !mine.is_empty() => managed.push(by.entry(Operation::Update, mine)),
            None => {}
        }
        managed.retain(|e| !e.fields.is_empty());
        if content(&obj) == content(&old.obj) && managed == old.managed {
            // A no-op update does not bump the resourceVersion.
            return Ok(Written::unchanged(old));
        }
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(old.resource_version()));
        let stored = Stored { obj, managed };
        Ok(self.write(key, stored, false, by.dry_run))
    }

    /// Server-side apply of `config` by `manager`.
    pub fn apply(
        &mut self,
        rt: &ResourceType,
        key: Key,
        config: Value,
        by: Writer<'_>,
        force: bool,
    ) -> Result<Written, ApiError> {
        let applied = fields::field_set(&config);
        let Some(old) = self.objects.get(&key).cloned() else {
            let mut obj = config;
            self.initialise(&key, &mut obj, &rt.api_version(rt.versions[0]));
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
            let stored = Stored {
                obj,
                managed: vec![by.entry(Operation::Apply, applied)],
            };
            return Ok(self.write(key, stored, true, by.dry_run));
        };
        let is_mine = |e: &ManagedEntry| e.manager == by.manager && e.operation == Operation::Apply;
        // Conflicts: a field another manager owns, set to a different value.
        let mut conflicts: Vec<(usize, FieldPath)> = Vec::new();
        for (i, e) in old.managed.iter().enumerate() {
            if is_mine(e) {
                continue;
            }
            for owned in &e.fields {
                for p in applied.iter().filter(|p| p.overlaps(owned)) {
                    let field = if p.0.len() <= owned.0.len() { p } else { owned };
                    if field.get(&old.obj) != field.get(&config)
                        && !conflicts.iter().any(|(j, f)| *j == i && f == field)
                    {
                        conflicts.push((i, field.clone()));
                    }
                }
            }
        }
        if !conflicts.is_empty() && !force {
            let named: Vec<(String, String)> = conflicts
                .iter()
                .map(|(i, f)| (old.managed[*i].label(), f.to_string()))
                .collect();
            return Err(ApiError::apply_conflict(&named));
        }
        let mut obj = old.obj.clone();
        for p in &applied {
            if let Some(v) = p.get(&config) {
                p.set(&mut obj, v.clone());
            }
        }
        let mut managed = old.managed.clone();
        for (i, f) in &conflicts {
            managed[*i].fields.retain(|p| !p.overlaps(f));
        }
        let previous: FieldSet = managed
            .iter()
            .find(|e| is_mine(e))
            .map(|e| e.fields.clone())
            .unwrap_or_default();
        for p in previous.difference(&applied) {
            let owned_elsewhere = managed
                .iter()
                .filter(|e| !is_mine(e))
                .any(|e| fields::overlaps_any(p, &e.fields));
            if !owned_elsewhere {
                p.remove(&mut obj);
            }
        }
        match managed.iter_mut().find(|e| is_mine(e)) {
            Some(e) => {
                e.fields = applied.clone();
                e.api_version = by.api_version.to_owned();
            }
            None => managed.push(by.entry(Operation::Apply, applied.clone())),
        }
        managed.retain(|e| !e.fields.is_empty());
        let unchanged_sets = managed.len() == old.managed.len()
            && managed.iter().zip(&old.managed).all(|(a, b)| {
                a.manager == b.manager && a.operation == b.operation && a.fields == b.fields
            });
        if content(&obj) == content(&old.obj) && unchanged_sets {
            // Re-applying an identical configuration is a no-op: same resourceVersion.
            return Ok(Written::unchanged(old));
        }
        if let Some(e) = managed.iter_mut().find(|e| is_mine(e)) {
            e.time = now();
        }
        Self::finish_update(&old, &mut obj);
        let stored = Stored { obj, managed };
        Ok(self.write(key, stored, false, by.dry_run))
    }

    /// Deletes an object, honouring a resourceVersion precondition.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        key: &Key,
        precondition_rv: Option<&str>,
        dry_run: bool,
    ) -> Result<Stored, ApiError> {
        let Some(old) = self.objects.get(key).cloned() else {
            return Err(ApiError::not_found(rt, &key.name));
        };
        if let Some(rv) = precondition_rv
            && rv != old.resource_version()
        {
            return Err(ApiError::precondition(
                rt,
                &key.name,
                rv,
                old.resource_version(),
            ));
        }
        if dry_run {
            return Ok(old);
        }
        self.objects.remove(key);
        self.rv += 1;
        let mut gone = old.clone();
        meta_mut(&mut gone.obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.log.push(Change {
            rv: self.rv,
            kind: "DELETED",
            key: key.clone(),
            object: gone.clone(),
        });
        Ok(gone)
    }

    /// Out-of-band edit for tests (like `kubectl edit` by manager `manager`).
    pub fn edit(
        &mut self,
        rt: &ResourceType,
        key: Key,
        manager: &str,
        f: impl FnOnce(&mut Value),
    ) -> Result<Written, ApiError> {
        let Some(old) = self.objects.get(&key) else {
            return Err(ApiError::not_found(rt, &key.name));
        };
        let mut obj = old.obj.clone();
        f(&mut obj);
        let api_version = rt.api_version(rt.versions[0]);
        let by = Writer {
            manager,
            api_version: &api_version,
            dry_run: false,
        };
        self.update(rt, key, obj, by, false)
    }
}
