//! A generic dependency graph and its walker.
//!
//! The walker runs a node as soon as all of its dependencies have finished, never more than
//! `parallelism` at once, and marks the dependents of a failed node "skipped (upstream failed)"
//! instead of running them. It knows nothing about resources: the engine builds the graph and
//! passes a closure that does the work.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::stream::{FuturesUnordered, StreamExt};

/// A directed acyclic graph whose nodes are `K`s; an edge goes from a node to one it depends on.
#[derive(Debug, Clone)]
pub struct Dag<K> {
    nodes: Vec<K>,
    deps: Vec<Vec<usize>>,
}

/// The graph has a cycle; the nodes on it, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<usize>);

impl<K> Default for Dag<K> {
    fn default() -> Self {
        Self { nodes: Vec::new(), deps: Vec::new() }
    }
}

impl<K> Dag<K> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, node: K) -> usize {
        self.nodes.push(node);
        self.deps.push(Vec::new());
        self.nodes.len() - 1
    }

    /// `node` depends on `on`: `on` finishes first.
    pub fn depend(&mut self, node: usize, on: usize) {
        if node != on && !self.deps[node].contains(&on) {
            self.deps[node].push(on);
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn node(&self, i: usize) -> &K {
        &self.nodes[i]
    }

    pub fn nodes(&self) -> &[K] {
        &self.nodes
    }

    pub fn deps(&self, i: usize) -> &[usize] {
        &self.deps[i]
    }

    fn dependents(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for (n, ds) in self.deps.iter().enumerate() {
            for &d in ds {
                out[d].push(n);
            }
        }
        out
    }

    /// Nodes in an order where every node comes after its dependencies (Kahn's algorithm,
    /// lowest index first among ready nodes, so the order is deterministic).
    pub fn topo_order(&self) -> Result<Vec<usize>, Cycle> {
        let dependents = self.dependents();
        let mut pending: Vec<usize> = self.deps.iter().map(Vec::len).collect();
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> =
            (0..self.nodes.len()).filter(|&i| pending[i] == 0).map(std::cmp::Reverse).collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(std::cmp::Reverse(n)) = ready.pop() {
            order.push(n);
            for &m in &dependents[n] {
                pending[m] -= 1;
                if pending[m] == 0 {
                    ready.push(std::cmp::Reverse(m));
                }
            }
        }
        if order.len() == self.nodes.len() {
            return Ok(order);
        }
        Err(Cycle(self.find_cycle(&pending)))
    }

    fn find_cycle(&self, pending: &[usize]) -> Vec<usize> {
        // Every node still pending has an unfinished dependency that is also pending; follow them
        // until a node repeats.
        let start = pending.iter().position(|&p| p > 0).unwrap_or(0);
        let mut seen = vec![usize::MAX; self.nodes.len()];
        let mut path = Vec::new();
        let mut n = start;
        while seen[n] == usize::MAX {
            seen[n] = path.len();
            path.push(n);
            n = *self.deps[n].iter().find(|&&d| pending[d] > 0).expect("pending node has a pending dependency");
        }
        path.split_off(seen[n])
    }
}

/// What happened to one node.
#[derive(Debug)]
pub enum Outcome<E> {
    Done,
    Failed(E),
    /// Not run because the node at this index failed.
    Skipped {
        because: usize,
    },
    /// Not started because the walk was interrupted.
    NotStarted,
}

impl<E> Outcome<E> {
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done)
    }
}

/// Runs `work(index)` for every node, dependencies first, at most `parallelism` at once. Once
/// `stop` is set no new node starts; running ones finish. The graph must be acyclic (check with
/// [`Dag::topo_order`] first); nodes on a cycle are reported as not started.
pub async fn walk<K, E, F, Fut>(dag: &Dag<K>, parallelism: usize, stop: &AtomicBool, work: F) -> Vec<Outcome<E>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    walk_batched(
        dag,
        parallelism,
        &|| stop.load(Ordering::SeqCst),
        |_| None::<()>,
        |nodes: Vec<usize>| {
            let i = nodes[0];
            let fut = work(i);
            async move { vec![(i, fut.await)] }
        },
    )
    .await
}

/// Like [`walk`] (with `stop` asked before each start), but nodes for which `batch_of` answers the same key run together, as one unit
/// of work counted once against `parallelism`. A batch waits until everything its members depend
/// on outside the batch has finished, so it is as large as the graph allows (e.g. every DNS record
/// of an apply in one cloud call). `work` receives the unit's node indices and answers a result
/// for each of them.
pub async fn walk_batched<K, E, B, F, Fut>(
    dag: &Dag<K>,
    parallelism: usize,
    stop: &dyn Fn() -> bool,
    batch_of: impl Fn(usize) -> Option<B>,
    work: F,
) -> Vec<Outcome<E>>
where
    B: Eq + std::hash::Hash + Clone,
    F: Fn(Vec<usize>) -> Fut,
    Fut: Future<Output = Vec<(usize, Result<(), E>)>>,
{
    let parallelism = parallelism.max(1);
    let n = dag.len();
    let dependents = dag.dependents();
    let mut pending: Vec<usize> = (0..n).map(|i| dag.deps[i].len()).collect();
    let mut outcomes: Vec<Option<Outcome<E>>> = (0..n).map(|_| None).collect();

    // Batches: their members, and how many nodes outside the batch they still wait for.
    let keys: Vec<Option<B>> = (0..n).map(&batch_of).collect();
    let mut batch_index: HashMap<B, usize> = HashMap::new();
    let mut member_of: Vec<Option<usize>> = vec![None; n];
    for (i, k) in keys.iter().enumerate() {
        if let Some(k) = k {
            let next = batch_index.len();
            member_of[i] = Some(*batch_index.entry(k.clone()).or_insert(next));
        }
    }
    let batches = batch_index.len();
    // For every node, the batches that have it as an outside ancestor.
    let mut gates: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting_on = vec![0usize; batches];
    for (b, waiting) in waiting_on.iter_mut().enumerate() {
        let mut seen = vec![false; n];
        let mut stack: Vec<usize> = (0..n).filter(|&i| member_of[i] == Some(b)).collect();
        while let Some(i) = stack.pop() {
            for &d in &dag.deps[i] {
                if !seen[d] {
                    seen[d] = true;
                    stack.push(d);
                    if member_of[d] != Some(b) {
                        gates[d].push(b);
                        *waiting += 1;
                    }
                }
            }
        }
    }
    let mut held: Vec<Vec<usize>> = vec![Vec::new(); batches];

    // A node that becomes ready later joins its batch if the batch still waits, else runs alone
    // (its batch already went; it depended on another member).
    let enqueue =
        |i: usize, ready: &mut VecDeque<Vec<usize>>, held: &mut Vec<Vec<usize>>, waiting_on: &[usize]| match member_of
            [i]
        {
            Some(b) if waiting_on[b] > 0 => held[b].push(i),
            _ => ready.push_back(vec![i]),
        };
    let mut ready: VecDeque<Vec<usize>> = VecDeque::new();
    let mut initial: Vec<Vec<usize>> = vec![Vec::new(); batches];
    for i in (0..n).filter(|&i| pending[i] == 0) {
        match member_of[i] {
            None => ready.push_back(vec![i]),
            Some(b) if waiting_on[b] > 0 => held[b].push(i),
            Some(b) => initial[b].push(i),
        }
    }
    ready.extend(initial.into_iter().filter(|u| !u.is_empty()));

    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < parallelism && !stop() {
            let Some(unit) = ready.pop_front() else { break };
            running.push(work(unit));
        }
        let Some(results) = running.next().await else { break };
        let mut finished = Vec::with_capacity(results.len());
        for (i, result) in results {
            finished.push(i);
            match result {
                Ok(()) => {
                    outcomes[i] = Some(Outcome::Done);
                    for &m in &dependents[i] {
                        pending[m] -= 1;
                        if pending[m] == 0 && outcomes[m].is_none() {
                            enqueue(m, &mut ready, &mut held, &waiting_on);
                        }
                    }
                }
                Err(e) => {
                    outcomes[i] = Some(Outcome::Failed(e));
                    // Everything downstream is skipped, attributed to this failure.
                    let mut stack = dependents[i].clone();
                    while let Some(m) = stack.pop() {
                        if outcomes[m].is_none() {
                            outcomes[m] = Some(Outcome::Skipped { because: i });
                            finished.push(m);
                            stack.extend(dependents[m].iter().copied());
                        }
                    }
                }
            }
        }
        // Finished (or skipped) nodes may open the gate of a batch.
        for i in finished {
            for &b in &gates[i] {
                waiting_on[b] -= 1;
                if waiting_on[b] == 0 {
                    let unit: Vec<usize> =
                        std::mem::take(&mut held[b]).into_iter().filter(|&m| outcomes[m].is_none()).collect();
                    if !unit.is_empty() {
                        ready.push_back(unit);
                    }
                }
            }
        }
    }
    outcomes.into_iter().map(|o| o.unwrap_or(Outcome::NotStarted)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    fn chain(n: usize) -> Dag<usize> {
        let mut d = Dag::new();
        for i in 0..n {
            let k = d.add(i);
            if i > 0 {
                d.depend(k, k - 1);
            }
        }
        d
    }

    #[test]
    fn topo_orders_dependencies_first_and_finds_cycles() {
        let mut d = Dag::new();
        let a = d.add("a");
        let b = d.add("b");
        let c = d.add("c");
        d.depend(a, c);
        d.depend(c, b);
        assert_eq!(d.topo_order().unwrap(), vec![b, c, a]);
        d.depend(b, a);
        let Cycle(cyc) = d.topo_order().unwrap_err();
        let mut sorted = cyc.clone();
        sorted.sort();
        assert_eq!(sorted, vec![a, b, c]);
    }

    #[tokio::test(start_paused = true)]
    async fn runs_in_dependency_order() {
        let d = chain(5);
        let log = Mutex::new(Vec::new());
        let stop = AtomicBool::new(false);
        let out = walk(&d, 10, &stop, |i| {
            let log = &log;
            async move {
                tokio::time::sleep(Duration::from_millis(10 * (5 - i as u64))).await;
                log.lock().unwrap().push(i);
                Ok::<_, ()>(())
            }
        })
        .await;
        assert!(out.iter().all(Outcome::is_done));
        assert_eq!(*log.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test(start_paused = true)]
    async fn parallelism_is_reached_and_never_exceeded() {
        let mut d = Dag::new();
        for i in 0..40 {
            d.add(i);
        }
        let now = AtomicUsize::new(0);
        let max = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        walk(&d, 7, &stop, |_| {
            let (now, max) = (&now, &max);
            async move {
                let c = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(c, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, ()>(())
            }
        })
        .await;
        assert_eq!(max.load(Ordering::SeqCst), 7);
    }

    #[tokio::test]
    async fn failure_skips_only_dependents() {
        // 0 <- 1 <- 2, and 3 independent
        let mut d = chain(3);
        d.add(3);
        let stop = AtomicBool::new(false);
        let out = walk(&d, 2, &stop, |i| async move { if i == 1 { Err("boom") } else { Ok(()) } }).await;
        assert!(out[0].is_done());
        assert!(matches!(out[1], Outcome::Failed("boom")));
        assert!(matches!(out[2], Outcome::Skipped { because: 1 }));
        assert!(out[3].is_done());
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_waits_for_everything_outside_it_and_runs_as_one_unit() {
        // 0..4 are addresses (created at different speeds), 4..8 records, each record on its
        // address, 8 is a record on nothing at all.
        let mut d = Dag::new();
        for i in 0..9 {
            d.add(i);
        }
        for r in 4..8 {
            d.depend(r, r - 4);
        }
        let units = Mutex::new(Vec::new());
        let stop = AtomicBool::new(false);
        let out = walk_batched(
            &d,
            2,
            &|| stop.load(Ordering::SeqCst),
            |i| (i >= 4).then_some("record"),
            |nodes: Vec<usize>| {
                let units = &units;
                async move {
                    tokio::time::sleep(Duration::from_millis(10 * nodes.len() as u64 + nodes[0] as u64)).await;
                    units.lock().unwrap().push(nodes.clone());
                    nodes.into_iter().map(|i| (i, if i == 2 { Err("boom") } else { Ok(()) })).collect::<Vec<_>>()
                }
            },
        )
        .await;
        let units = units.into_inner().unwrap();
        let batch: Vec<_> = units.iter().filter(|u| u.iter().any(|&i| i >= 4)).collect();
        assert_eq!(batch.len(), 1, "records went in one unit: {units:?}");
        let mut members = batch[0].clone();
        members.sort();
        assert_eq!(members, vec![4, 5, 7, 8], "every record except the one whose address failed");
        assert!(matches!(out[6], Outcome::Skipped { because: 2 }));
        assert!(out[8].is_done());
    }

    #[tokio::test]
    async fn stop_lets_running_finish_and_starts_nothing_new() {
        let d = chain(3);
        let stop = AtomicBool::new(false);
        let out = walk(&d, 4, &stop, |i| {
            let stop = &stop;
            async move {
                if i == 0 {
                    stop.store(true, Ordering::SeqCst);
                }
                Ok::<_, ()>(())
            }
        })
        .await;
        assert!(out[0].is_done());
        assert!(matches!(out[1], Outcome::NotStarted));
        assert!(matches!(out[2], Outcome::NotStarted));
    }
}
