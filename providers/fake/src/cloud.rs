//! The fake cloud's storage and the [`Provider`] implementation over it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use matih_plans::*;
use matih_state::Attrs;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

/// One object in the fake cloud.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FakeObject {
    pub id: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub name: String,
    pub attrs: Attrs,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Data {
    next_id: u64,
    objects: BTreeMap<String, FakeObject>,
}

/// Which operation to fail, for which address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailOn {
    /// The create call errors and nothing is created.
    Create(ResourceAddr),
    /// The object is created, then the call errors (an ambiguous outcome, like a timeout).
    CreateAfterCreating(ResourceAddr),
    Update(ResourceAddr),
    Delete(ResourceAddr),
    /// Every read of this type fails.
    Read(ResourceType),
}

/// How the fake cloud misbehaves.
#[derive(Debug, Clone, Default)]
pub struct FakeOptions {
    /// Added to every call.
    pub latency: Duration,
    pub fail: Vec<FailOn>,
}

/// A test setting of the fake cloud that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("MATIH_FAKE_LATENCY_MS={0} is not a number of milliseconds")]
    Latency(String),
    #[error("MATIH_FAKE_FAIL item `{0}` is not op:address")]
    Item(String),
    #[error("MATIH_FAKE_FAIL: unknown operation `{0}` (create, create-after-creating, update, delete, read)")]
    Operation(String),
    #[error("MATIH_FAKE_FAIL names no resource")]
    Address(#[from] AddrError),
}

impl FakeOptions {
    /// Reads `MATIH_FAKE_LATENCY_MS` and `MATIH_FAKE_FAIL` (`create:ADDR,delete:ADDR,...`) so CLI
    /// tests can steer a child process.
    pub fn from_env() -> Result<Self, OptionsError> {
        let mut o = FakeOptions::default();
        if let Ok(ms) = std::env::var("MATIH_FAKE_LATENCY_MS") {
            o.latency = Duration::from_millis(ms.parse().map_err(|_| OptionsError::Latency(ms.clone()))?);
        }
        if let Ok(list) = std::env::var("MATIH_FAKE_FAIL") {
            for item in list.split(',').filter(|s| !s.is_empty()) {
                let (op, target) = item.split_once(':').ok_or_else(|| OptionsError::Item(item.to_string()))?;
                let addr = || target.parse::<ResourceAddr>();
                o.fail.push(match op {
                    "create" => FailOn::Create(addr()?),
                    "create-after-creating" => FailOn::CreateAfterCreating(addr()?),
                    "update" => FailOn::Update(addr()?),
                    "delete" => FailOn::Delete(addr()?),
                    "read" => FailOn::Read(target.parse()?),
                    other => return Err(OptionsError::Operation(other.to_string())),
                });
            }
        }
        Ok(o)
    }
}

/// A recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub op: &'static str,
    pub rtype: String,
    /// Addresses the call was about (all of them for a batched read).
    pub addrs: Vec<String>,
}

/// The fake cloud and its provider.
pub struct FakeCloud {
    data: Mutex<Data>,
    file: Option<PathBuf>,
    opts: FakeOptions,
    calls: Mutex<Vec<Call>>,
    counters: Mutex<ApiCalls>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl FakeCloud {
    pub fn in_memory(opts: FakeOptions) -> Self {
        Self {
            data: Mutex::new(Data::default()),
            file: None,
            opts,
            calls: Mutex::default(),
            counters: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    /// A cloud kept in a JSON file, re-read before and written after every call, so other
    /// processes see the same cloud.
    pub fn file_backed(path: &Path, opts: FakeOptions) -> Self {
        let mut c = Self::in_memory(opts);
        c.file = Some(path.to_path_buf());
        c
    }

    fn with_data<T>(&self, f: impl FnOnce(&mut Data) -> T) -> T {
        let mut data = self.data.lock().unwrap();
        let Some(path) = &self.file else { return f(&mut data) };
        // One process at a time touches the file.
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.with_extension("lock"))
            .expect("fake cloud lock file");
        lock.lock().expect("lock fake cloud");
        *data = match fs::read(path) {
            Ok(bytes) if !bytes.is_empty() => serde_json::from_slice(&bytes).expect("fake cloud file is valid JSON"),
            _ => Data::default(),
        };
        let before = serde_json::to_vec(&*data).unwrap();
        let out = f(&mut data);
        let after = serde_json::to_vec_pretty(&*data).unwrap();
        if before != serde_json::to_vec(&*data).unwrap() {
            let tmp = path.with_extension("tmp");
            fs::write(&tmp, after).expect("write fake cloud");
            fs::rename(&tmp, path).expect("rename fake cloud");
        }
        out
    }

    /// Every object, for assertions ("the cloud console").
    pub fn objects(&self) -> Vec<FakeObject> {
        self.with_data(|d| d.objects.values().cloned().collect())
    }

    /// Objects carrying `matih:address = addr`.
    pub fn objects_at(&self, addr: &ResourceAddr) -> Vec<FakeObject> {
        let a = addr.to_string();
        self.objects().into_iter().filter(|o| o.tags.get("matih:address") == Some(&a)).collect()
    }

    /// Changes an attribute behind the tool's back.
    pub fn tamper(&self, id: &str, attr: &str, value: Json) {
        self.with_data(|d| {
            d.objects.get_mut(id).expect("object exists").attrs.insert(attr.to_string(), value);
        })
    }

    /// Puts objects into the cloud directly (for benchmarks that start from a converged cloud).
    pub fn seed(&self, objects: impl IntoIterator<Item = (String, String, Attrs)>) {
        self.with_data(|d| {
            for (rtype, id, attrs) in objects {
                d.objects
                    .insert(id.clone(), FakeObject { id, rtype, name: String::new(), attrs, tags: BTreeMap::new() });
            }
        })
    }

    /// Deletes an object behind the tool's back.
    pub fn remove(&self, id: &str) {
        self.with_data(|d| d.objects.remove(id));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn clear_calls(&self) {
        self.calls.lock().unwrap().clear();
    }

    /// The most create/update/delete calls that were ever running at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    fn record(&self, op: &'static str, rtype: &ResourceType, addrs: Vec<String>) {
        let kind = rtype.kind.replace('_', "");
        *self.counters.lock().unwrap().entry(format!("fake:{op}{kind}")).or_default() += 1;
        self.calls.lock().unwrap().push(Call { op, rtype: rtype.to_string(), addrs });
    }

    async fn latency(&self) {
        if !self.opts.latency.is_zero() {
            tokio::time::sleep(self.opts.latency).await;
        }
    }

    fn fails(&self, f: &FailOn) -> bool {
        self.opts.fail.contains(f)
    }

    fn api_error(op: &str, kind: ErrorKind, code: &str, message: String) -> ProviderError {
        ApiError::new("fake", op, kind, code, message).into()
    }

    fn computed(rtype: &ResourceType, id: &str, n: u64) -> Attrs {
        let mut a = Attrs::new();
        a.insert("id".into(), json!(id));
        a.insert("arn".into(), json!(format!("fake:{}:{id}", rtype)));
        match rtype.kind.as_str() {
            "cluster" => {
                a.insert("endpoint".into(), json!(format!("https://{id}.cluster.fake.invalid")));
                a.insert("ca".into(), json!(format!("CA-{id}")));
            }
            "address" => {
                a.insert("ip".into(), json!(format!("198.51.100.{}", n % 250 + 1)));
            }
            "zone" => {
                a.insert(
                    "name_servers".into(),
                    json!([format!("ns-{n}-a.fake.invalid"), format!("ns-{n}-b.fake.invalid")]),
                );
            }
            _ => {}
        }
        a
    }

    fn schema_computed(rtype: &ResourceType) -> Vec<String> {
        crate::graph::schemas()
            .into_iter()
            .find(|s| &s.rtype == rtype)
            .map(|s| s.attributes.into_iter().filter(|a| a.computed).map(|a| a.name).collect())
            .unwrap_or_default()
    }
}

struct InFlight<'a>(&'a FakeCloud);

impl<'a> InFlight<'a> {
    fn enter(c: &'a FakeCloud) -> Self {
        let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        c.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Provider for FakeCloud {
    fn name(&self) -> &str {
        "fake"
    }

    fn schemas(&self) -> Vec<TypeSchema> {
        crate::graph::schemas()
    }

    async fn validate(&self, req: ValidateRequest<'_>) -> ValidateResponse {
        let mut errors = Vec::new();
        if let Some(Value::Known(Json::String(cidr))) = req.config.get("cidr")
            && !cidr.contains('/')
        {
            errors.push(format!("cidr `{cidr}` is not in a.b.c.d/n form"));
        }
        ValidateResponse { errors }
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        self.record("Describe", &req.rtype, req.items.iter().map(|i| i.addr.to_string()).collect());
        self.latency().await;
        if self.fails(&FailOn::Read(req.rtype.clone())) {
            return Err(Self::api_error(
                "Describe",
                ErrorKind::Unavailable,
                "InternalError",
                format!("injected read failure for {}", req.rtype),
            ));
        }
        let rtype = req.rtype.to_string();
        let found = self.with_data(|d| {
            req.items
                .iter()
                .filter_map(|i| {
                    let o = d.objects.get(&i.id).filter(|o| o.rtype == rtype)?;
                    Some((i.addr.clone(), ReadResource { id: o.id.clone(), attrs: o.attrs.clone() }))
                })
                .collect()
        });
        Ok(ReadResponse { found, ..ReadResponse::default() })
    }

    async fn apply(&self, req: ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let _g = InFlight::enter(self);
        let op = if req.prior.is_some() { "Modify" } else { "Create" };
        self.record(op, &req.rtype, vec![req.addr.to_string()]);
        self.latency().await;
        if let Some(prior) = req.prior {
            if self.fails(&FailOn::Update(req.addr.clone())) {
                return Err(Self::api_error(
                    op,
                    ErrorKind::Other,
                    "InjectedFailure",
                    format!("injected update failure for {}", req.addr),
                ));
            }
            let computed = Self::schema_computed(&req.rtype);
            return self.with_data(|d| {
                let o = d.objects.get_mut(&prior.id).ok_or_else(|| {
                    Self::api_error(op, ErrorKind::NotFound, "NotFound", format!("{} does not exist", prior.id))
                })?;
                for (k, v) in req.config {
                    if !computed.contains(&k) {
                        o.attrs.insert(k, v);
                    }
                }
                Ok(ApplyResponse::new(o.id.clone(), o.attrs.clone()))
            });
        }
        if self.fails(&FailOn::Create(req.addr.clone())) {
            return Err(Self::api_error(
                op,
                ErrorKind::Invalid,
                "InvalidParameterValue",
                format!("injected create failure for {}", req.addr),
            ));
        }
        let obj = self.with_data(|d| {
            d.next_id += 1;
            let n = d.next_id;
            let id = format!("{}-{n:06}", req.rtype.kind.replace('_', ""));
            let mut attrs = req.config.clone();
            attrs.extend(Self::computed(&req.rtype, &id, n));
            let o = FakeObject {
                id: id.clone(),
                rtype: req.rtype.to_string(),
                name: req.identity.name.clone(),
                attrs,
                tags: req.identity.owner_tags.clone(),
            };
            d.objects.insert(id, o.clone());
            o
        });
        if self.fails(&FailOn::CreateAfterCreating(req.addr.clone())) {
            return Err(Self::api_error(
                op,
                ErrorKind::NoResponse,
                "RequestTimeout",
                format!("injected timeout after creating {}", req.addr),
            ));
        }
        Ok(ApplyResponse::new(obj.id, obj.attrs))
    }

    async fn delete(&self, req: DeleteRequest) -> Result<(), ProviderError> {
        let _g = InFlight::enter(self);
        self.record("Delete", &req.rtype, vec![req.addr.to_string()]);
        self.latency().await;
        if self.fails(&FailOn::Delete(req.addr.clone())) {
            return Err(Self::api_error(
                "Delete",
                ErrorKind::Conflict,
                "DependencyViolation",
                format!("injected delete failure for {}", req.addr),
            ));
        }
        // Deleting something already gone is success: the goal is that it does not exist.
        self.with_data(|d| d.objects.remove(&req.id));
        Ok(())
    }

    async fn apply_batch(&self, reqs: Vec<ApplyRequest>) -> Vec<Result<ApplyResponse, ProviderError>> {
        if let Some(first) = reqs.first() {
            self.record("ChangeBatch", &first.rtype.clone(), reqs.iter().map(|r| r.addr.to_string()).collect());
        }
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.apply(r).await);
        }
        out
    }

    async fn delete_batch(&self, reqs: Vec<DeleteRequest>) -> Vec<Result<(), ProviderError>> {
        if let Some(first) = reqs.first() {
            self.record("ChangeBatch", &first.rtype.clone(), reqs.iter().map(|r| r.addr.to_string()).collect());
        }
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.delete(r).await);
        }
        out
    }

    async fn find_by_owner(&self, req: FindRequest) -> Result<Option<ReadResource>, ProviderError> {
        self.record("FindByTag", &req.rtype, vec![req.addr.to_string()]);
        self.latency().await;
        let rtype = req.rtype.to_string();
        Ok(self.with_data(|d| {
            d.objects
                .values()
                .filter(|o| o.rtype == rtype && req.owner_tags.iter().all(|(k, v)| o.tags.get(k) == Some(v)))
                .max_by_key(|o| o.id.clone())
                .map(|o| ReadResource { id: o.id.clone(), attrs: o.attrs.clone() })
        }))
    }

    fn stats(&self) -> CallStats {
        CallStats { calls: self.counters.lock().unwrap().clone(), ..CallStats::default() }
    }
}
