//! The remote store over an in-memory object store: conditional writes (no lost update, a lost
//! answer is not a conflict), the previous version kept, lease locks (contention, takeover after
//! expiry, a holder that lost its lease stops writing), lock status and force-unlock by id.
//! The clouds' object stores are tested against their emulators in their own crates.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use matih_state::remote::MemoryObjects;
use matih_state::{LockOptions, ObjectStore, RemoteStore, State, StateError, StateStore, format};

const KEY: &str = "matih/prod-eks.json";

fn opts(timeout: Duration) -> LockOptions {
    LockOptions { timeout, command: "matih-infra test".into() }
}

fn store(objects: &Arc<MemoryObjects>) -> RemoteStore {
    RemoteStore::new(Arc::clone(objects) as Arc<dyn ObjectStore>, KEY)
}

async fn save(store: &RemoteStore, lock: &dyn matih_state::StoreLock, state: &mut State) -> Result<(), StateError> {
    let snapshot = store.snapshot(state);
    store.write(snapshot, lock).await
}

fn decoded(objects: &MemoryObjects, key: &str) -> State {
    format::decode(&objects.bytes(key).unwrap(), std::path::Path::new(key)).unwrap()
}

#[tokio::test]
async fn writes_create_then_replace_and_keep_the_previous_version() {
    let objects = Arc::new(MemoryObjects::new(false));
    let s = store(&objects);
    assert!(s.load(&|_| {}).await.unwrap().is_none());
    let lock = s.lock(&opts(Duration::ZERO), &|_| {}).await.unwrap();
    let mut state = common::sample_state();
    save(&s, lock.as_ref(), &mut state).await.unwrap();
    assert_eq!(decoded(&objects, KEY).serial, 1);
    assert!(objects.bytes(&format!("{KEY}.backup")).is_none(), "nothing to keep on the first write");
    save(&s, lock.as_ref(), &mut state).await.unwrap();
    assert_eq!(decoded(&objects, KEY).serial, 2);
    assert_eq!(decoded(&objects, &format!("{KEY}.backup")).serial, 1, "the previous version is kept");
    // A fresh process loads what was written.
    assert_eq!(store(&objects).load(&|_| {}).await.unwrap().unwrap(), state);
    s.unlock(lock).await.unwrap();
    assert!(objects.bytes(&format!("{KEY}.lock")).is_none(), "unlock deletes the lock object");

    // A bucket that versions objects keeps them itself: no backup object.
    let versioned = Arc::new(MemoryObjects::new(true));
    let s = store(&versioned);
    let lock = s.lock(&opts(Duration::ZERO), &|_| {}).await.unwrap();
    save(&s, lock.as_ref(), &mut state).await.unwrap();
    save(&s, lock.as_ref(), &mut state).await.unwrap();
    assert!(versioned.bytes(&format!("{KEY}.backup")).is_none());
}

#[tokio::test]
async fn a_writer_that_lost_the_race_fails_loudly_and_loses_nothing() {
    let objects = Arc::new(MemoryObjects::new(false));
    let s = store(&objects);
    let lock = s.lock(&opts(Duration::ZERO), &|_| {}).await.unwrap();
    let mut state = common::sample_state();
    save(&s, lock.as_ref(), &mut state).await.unwrap();
    s.load(&|_| {}).await.unwrap();

    // Someone writes the state without the lock (or after breaking it).
    let mut theirs = state.clone();
    theirs.serial = 7;
    objects.put(KEY, format::encode(&theirs)).await.unwrap();
    let err = save(&s, lock.as_ref(), &mut state).await.unwrap_err();
    match &err {
        StateError::WriteConflict { expected_serial, found_serial, .. } => {
            assert_eq!((*expected_serial, *found_serial), (1, Some(7)));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("changed since this command read it") && err.hint().is_some(), "{err}");
    assert_eq!(decoded(&objects, KEY).serial, 7, "their state is untouched");
}

#[tokio::test]
async fn a_write_whose_answer_was_lost_is_not_a_conflict() {
    let objects = Arc::new(MemoryObjects::new(false));
    let s = store(&objects);
    objects.lose_answers(1); // the lock's create
    let lock = s.lock(&opts(Duration::ZERO), &|_| {}).await.expect("its own lock create, retried, is its own");
    let mut state = common::sample_state();
    objects.lose_answers(1);
    save(&s, lock.as_ref(), &mut state).await.expect("the create landed; the retry met it");
    objects.lose_answers(1);
    save(&s, lock.as_ref(), &mut state).await.expect("the replace landed; the retry met it");
    assert_eq!(decoded(&objects, KEY).serial, 2);
    // And the write after goes on from the version that landed.
    save(&s, lock.as_ref(), &mut state).await.unwrap();
    assert_eq!(decoded(&objects, KEY).serial, 3);
}

#[tokio::test]
async fn a_held_lock_names_its_holder_and_force_unlock_needs_its_id() {
    let objects = Arc::new(MemoryObjects::new(false));
    let a = store(&objects);
    let b = store(&objects);
    let held = a.lock(&opts(Duration::ZERO), &|_| {}).await.unwrap();
    let err = b.lock(&opts(Duration::ZERO), &|_| {}).await.unwrap_err();
    match &err {
        StateError::Locked { holder: Some(h), .. } => {
            assert_eq!(h.id, held.info().id);
            assert_eq!(h.pid, std::process::id());
            assert!(h.expires_at.is_some());
        }
        other => panic!("{other:?}"),
    }
    let status = b.lock_status().await.unwrap().unwrap();
    assert_eq!(status.id, held.info().id);
    let err = b.force_unlock("not-the-id").await.unwrap_err();
    assert!(matches!(&err, StateError::LockIdMismatch { holder, .. } if holder.id == status.id), "{err:?}");
    assert!(err.hint().unwrap().contains(&status.id));
    assert_eq!(b.force_unlock(&status.id).await.unwrap().unwrap().id, status.id);
    assert!(b.lock_status().await.unwrap().is_none());
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_its_holder_stops_writing() {
    let objects = Arc::new(MemoryObjects::new(false));
    let short = |o: &Arc<MemoryObjects>| store(o).with_lease(Duration::from_millis(600), Duration::ZERO);
    let (a, b) = (short(&objects), short(&objects));
    let mut state = common::sample_state();

    // A holder that dies: its lease is never renewed, and another waits it out.
    let dead = a.lock(&opts(Duration::ZERO), &|_| {}).await.unwrap();
    let dead_id = dead.info().id.clone();
    drop(dead); // the heartbeat stops with the process; the lock object stays
    let waited_for = std::sync::Mutex::new(None);
    let lock_b = b
        .lock(&opts(Duration::from_secs(30)), &|h| *waited_for.lock().unwrap() = h.map(|h| h.id.clone()))
        .await
        .unwrap();
    assert_eq!(waited_for.lock().unwrap().as_deref(), Some(dead_id.as_str()));
    assert_eq!(lock_b.took_over().map(|h| h.id.as_str()), Some(dead_id.as_str()), "it says whose lock it took");
    save(&b, lock_b.as_ref(), &mut state).await.unwrap();

    // A live holder renews: its lease never runs out while it works.
    let c = short(&objects);
    let err = c.lock(&opts(Duration::from_millis(1500)), &|_| {}).await.unwrap_err();
    assert!(matches!(err, StateError::Locked { .. }), "{err:?}");

    // A holder whose lock was broken (force-unlock by id, then taken) finds out and stops.
    let id = lock_b.info().id.clone();
    c.force_unlock(&id).await.unwrap();
    let lock_c = c.lock(&opts(Duration::ZERO), &|_| {}).await.unwrap();
    let mut lost = None;
    for _ in 0..100 {
        match save(&b, lock_b.as_ref(), &mut state).await {
            Err(e @ StateError::LockLost { .. }) => {
                lost = Some(e);
                break;
            }
            Ok(()) | Err(StateError::WriteConflict { .. }) => {}
            Err(e) => panic!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lost = lost.expect("the old holder learns its lease is gone");
    assert!(lost.to_string().contains("no longer held"), "{lost}");
    c.unlock(lock_c).await.unwrap();
    assert!(objects.writes.load(Ordering::SeqCst) > 0);
}
