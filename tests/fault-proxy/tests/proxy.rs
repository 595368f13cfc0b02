//! The proxy end to end: a tiny upstream on 127.0.0.1 that records what reaches it, the proxy in
//! front of it, and clients that see what the network lets through.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use matih_fault_proxy::{Action, Fault, FaultProxy, Injected, Options, Request, Rule, UNCLASSIFIED};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Barrier;

/// What reached the upstream.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: HeaderMap,
    body: Bytes,
}

/// An upstream that records every request and answers 201 with an echo of it. With a barrier,
/// each request waits at it before being answered.
struct Upstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    async fn start(barrier: Option<Arc<Barrier>>) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (log, barrier) = (log.clone(), barrier.clone());
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (log, barrier) = (log.clone(), barrier.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await?.to_bytes();
                        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
                        let echo =
                            format!("upstream saw {} {} {}", parts.method, target, String::from_utf8_lossy(&body));
                        log.lock().unwrap().push(Seen {
                            method: parts.method.to_string(),
                            target,
                            headers: parts.headers,
                            body,
                        });
                        if let Some(b) = barrier {
                            b.wait().await;
                        }
                        let resp = http::Response::builder()
                            .status(201)
                            .header("x-upstream", "yes")
                            .header("content-type", "text/plain")
                            .body(Full::new(Bytes::from(echo)))
                            .unwrap();
                        Ok::<_, hyper::Error>(resp)
                    }
                });
                tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc));
            }
        });
        Upstream { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// `/CreateThing/1` is action `CreateThing`; names starting with `Get` are reads; paths not
/// starting with a capital letter are unclassified.
fn classify(req: &Request<'_>) -> Option<Action> {
    let name = req.path_and_query.trim_start_matches('/').split(['/', '?']).next()?;
    name.starts_with(|c: char| c.is_ascii_uppercase())
        .then(|| Action { name: name.to_owned(), mutating: !name.starts_with("Get") })
}

fn proxy(upstream: &Upstream, rules: Vec<Rule>) -> FaultProxy {
    FaultProxy::start(Options {
        upstream: upstream.addr,
        classify: Arc::new(classify),
        error_body: Arc::new(|req, status| {
            ("application/x-test".to_owned(), format!("injected {status} for {}", req.path_and_query).into_bytes())
        }),
        rules,
    })
}

/// What a client got back.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

/// One keep-alive client connection.
struct Client {
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    async fn connect(port: u16) -> Client {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        Client { sender }
    }

    async fn send(&mut self, method: &str, target: &str, body: &str) -> Result<Answer, hyper::Error> {
        let req = http::Request::builder()
            .method(method)
            .uri(target)
            .header("host", "api.example.test")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Answer { status, headers, body: String::from_utf8(body.to_vec()).unwrap() })
    }
}

/// One request on a fresh connection.
async fn send_once(port: u16, method: &str, target: &str) -> Result<Answer, hyper::Error> {
    Client::connect(port).await.send(method, target, "").await
}

/// Writes a raw request and reads until the proxy closes: the bytes on FIN, the error on RST.
async fn raw_exchange(port: u16, target: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let req =
        format!("POST {target} HTTP/1.1\r\nhost: api.example.test\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi");
    stream.write_all(req.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(answer)
}

fn status_and_injected(answers: &[Answer], proxy: &FaultProxy) -> (Vec<u16>, Vec<(String, u32)>) {
    (answers.iter().map(|a| a.status).collect(), proxy.injected().into_iter().map(|i| (i.action, i.call)).collect())
}

#[tokio::test]
async fn pass_through_keeps_method_target_headers_body_and_host() {
    let upstream = Upstream::start(None).await;
    let proxy = proxy(&upstream, vec![]);
    let mut client = Client::connect(proxy.port()).await;
    let req = http::Request::builder()
        .method("PUT")
        .uri("/CreateThing/1?dry=no")
        .header("host", "ec2.us-east-1.amazonaws.com")
        .header("x-amz-date", "20250101T000000Z")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=x")
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap();
    let resp = client.sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-upstream"], "yes");
    assert_eq!(resp.headers()["content-type"], "text/plain");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "upstream saw PUT /CreateThing/1?dry=no payload");

    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].method.as_str(), seen[0].target.as_str()), ("PUT", "/CreateThing/1?dry=no"));
    assert_eq!(seen[0].headers["host"], "ec2.us-east-1.amazonaws.com");
    assert_eq!(seen[0].headers["x-amz-date"], "20250101T000000Z");
    assert_eq!(seen[0].headers["authorization"], "AWS4-HMAC-SHA256 Credential=x");
    assert_eq!(seen[0].body, "payload");

    // The same connection stays usable.
    let again = client.send("GET", "/GetThing/1", "").await.unwrap();
    assert_eq!(again.status, 201);
    assert_eq!(
        proxy.calls().into_iter().collect::<Vec<_>>(),
        [("CreateThing".to_owned(), 1), ("GetThing".to_owned(), 1)]
    );
    assert!(proxy.injected().is_empty());
}

#[tokio::test]
async fn drop_before_forward_resets_the_connection_and_never_reaches_upstream() {
    let upstream = Upstream::start(None).await;
    let rule = Rule::Action { name: "CreateThing".into(), calls: vec![1], fault: Fault::DropBeforeForward };
    let proxy = proxy(&upstream, vec![rule]);
    let err = raw_exchange(proxy.port(), "/CreateThing/1").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    assert_eq!(upstream.seen().len(), 0);
    assert_eq!(
        proxy.injected(),
        [Injected {
            action: "CreateThing".into(),
            call: 1,
            fault: Fault::DropBeforeForward,
            method: "POST".into(),
            path: "/CreateThing/1".into(),
        }]
    );
    // Call 2 is not faulted, and a hyper client sees call 1's drop as an error too.
    assert_eq!(send_once(proxy.port(), "POST", "/CreateThing/1").await.unwrap().status, 201);
    proxy.set_rules(vec![Rule::FirstOfEachAction { n: 1, mutating_only: true, fault: Fault::DropBeforeForward }]);
    assert!(send_once(proxy.port(), "POST", "/CreateThing/1").await.is_err());
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test]
async fn forward_then_reset_reaches_upstream_and_resets_the_connection() {
    let upstream = Upstream::start(None).await;
    let fault = Fault::ForwardThenReset;
    let proxy = proxy(&upstream, vec![Rule::FirstOfEachAction { n: 1, mutating_only: false, fault }]);
    let err = raw_exchange(proxy.port(), "/CreateThing/1").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].target.as_str(), &seen[0].body[..]), ("/CreateThing/1", &b"hi"[..]));

    assert!(send_once(proxy.port(), "POST", "/DeleteThing/1").await.is_err());
    assert_eq!(upstream.seen().len(), 2);
    assert_eq!(
        proxy.injected().iter().map(|i| i.fault.clone()).collect::<Vec<_>>(),
        [Fault::ForwardThenReset, Fault::ForwardThenReset]
    );
}

#[tokio::test]
async fn forward_then_500_reaches_upstream_and_answers_the_error_body() {
    let upstream = Upstream::start(None).await;
    let fault = Fault::ForwardThen500;
    let proxy = proxy(&upstream, vec![Rule::FirstOfEachAction { n: 1, mutating_only: true, fault }]);
    let mut client = Client::connect(proxy.port()).await;
    let answer = client.send("POST", "/CreateThing/1", "x").await.unwrap();
    assert_eq!(answer.status, 500);
    assert_eq!(answer.headers["content-type"], "application/x-test");
    assert_eq!(answer.headers.get("x-upstream"), None);
    assert_eq!(answer.body, "injected 500 for /CreateThing/1");
    assert_eq!(upstream.seen().len(), 1);
    // The connection survives a synthetic answer: the retry goes through on it.
    assert_eq!(client.send("POST", "/CreateThing/1", "x").await.unwrap().status, 201);
    assert_eq!(upstream.seen().len(), 2);
}

#[tokio::test]
async fn throttle_answers_429_with_retry_after_and_does_not_forward() {
    let upstream = Upstream::start(None).await;
    let fault = Fault::Throttle { retry_after_secs: 7 };
    let proxy = proxy(&upstream, vec![Rule::Action { name: "CreateThing".into(), calls: vec![1], fault }]);
    let answer = send_once(proxy.port(), "POST", "/CreateThing/1").await.unwrap();
    assert_eq!(answer.status, 429);
    assert_eq!(answer.headers["retry-after"], "7");
    assert_eq!(answer.headers["content-type"], "application/x-test");
    assert_eq!(answer.body, "injected 429 for /CreateThing/1");
    assert_eq!(upstream.seen().len(), 0);
}

#[tokio::test]
async fn latency_delays_then_forwards() {
    let upstream = Upstream::start(None).await;
    let fault = Fault::Latency(Duration::from_millis(300));
    let proxy = proxy(&upstream, vec![Rule::Action { name: "CreateThing".into(), calls: vec![1], fault }]);
    let started = Instant::now();
    let answer = send_once(proxy.port(), "POST", "/CreateThing/1").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    assert_eq!(answer.status, 201);
    assert_eq!(upstream.seen().len(), 1);
    assert_eq!(proxy.injected()[0].fault, Fault::Latency(Duration::from_millis(300)));
}

#[tokio::test]
async fn first_of_each_action_faults_only_the_first_mutating_call() {
    let upstream = Upstream::start(None).await;
    let fault = Fault::Throttle { retry_after_secs: 1 };
    let proxy = proxy(&upstream, vec![Rule::FirstOfEachAction { n: 1, mutating_only: true, fault }]);
    let mut client = Client::connect(proxy.port()).await;
    let mut answers = Vec::new();
    for target in ["/CreateA/1", "/CreateA/2", "/CreateB/1", "/GetA/1", "/health", "/CreateB/2", "/CreateA/3"] {
        answers.push(client.send("POST", target, "").await.unwrap());
    }
    let (statuses, injected) = status_and_injected(&answers, &proxy);
    assert_eq!(statuses, [429, 201, 429, 201, 201, 201, 201]);
    assert_eq!(injected, [("CreateA".to_owned(), 1), ("CreateB".to_owned(), 1)]);
    assert_eq!(upstream.seen().len(), 5);
    let calls = proxy.calls();
    assert_eq!((calls["CreateA"], calls["CreateB"], calls["GetA"], calls[UNCLASSIFIED]), (3, 2, 1, 1));
}

#[tokio::test]
async fn action_rule_faults_the_listed_call_numbers_of_that_action() {
    let upstream = Upstream::start(None).await;
    let fault = Fault::Throttle { retry_after_secs: 1 };
    let proxy = proxy(&upstream, vec![Rule::Action { name: "CreateA".into(), calls: vec![2, 3], fault }]);
    let mut client = Client::connect(proxy.port()).await;
    let mut answers = Vec::new();
    for target in ["/CreateA/x", "/CreateB/x", "/CreateA/x", "/CreateB/x", "/CreateA/x", "/CreateA/x"] {
        answers.push(client.send("POST", target, "").await.unwrap());
    }
    let (statuses, injected) = status_and_injected(&answers, &proxy);
    assert_eq!(statuses, [201, 201, 429, 201, 429, 201]);
    assert_eq!(injected, [("CreateA".to_owned(), 2), ("CreateA".to_owned(), 3)]);
}

#[tokio::test]
async fn the_first_rule_that_selects_a_request_decides() {
    let upstream = Upstream::start(None).await;
    let rules = vec![
        Rule::Action { name: "CreateA".into(), calls: vec![1], fault: Fault::Throttle { retry_after_secs: 7 } },
        Rule::FirstOfEachAction { n: 1, mutating_only: false, fault: Fault::Throttle { retry_after_secs: 1 } },
    ];
    let proxy = proxy(&upstream, rules);
    let mut client = Client::connect(proxy.port()).await;
    let a = client.send("POST", "/CreateA/1", "").await.unwrap();
    let b = client.send("POST", "/CreateB/1", "").await.unwrap();
    assert_eq!((a.headers["retry-after"].to_str().unwrap(), b.headers["retry-after"].to_str().unwrap()), ("7", "1"));
    assert_eq!(proxy.injected().len(), 2);
}

#[tokio::test]
async fn unclassified_requests_are_faulted_only_by_random_over_all_calls() {
    let upstream = Upstream::start(None).await;
    let throttle = Fault::Throttle { retry_after_secs: 1 };
    let proxy = proxy(
        &upstream,
        vec![
            Rule::FirstOfEachAction { n: 10, mutating_only: false, fault: throttle.clone() },
            Rule::Action { name: UNCLASSIFIED.into(), calls: vec![1, 2], fault: throttle.clone() },
            Rule::Random { seed: 1, probability: 1.0, faults: vec![throttle.clone()], mutating_only: true },
        ],
    );
    let mut client = Client::connect(proxy.port()).await;
    assert_eq!(client.send("GET", "/health", "").await.unwrap().status, 201);
    assert!(proxy.injected().is_empty());

    proxy.set_rules(vec![Rule::Random {
        seed: 1,
        probability: 1.0,
        faults: vec![throttle.clone()],
        mutating_only: false,
    }]);
    assert_eq!(client.send("GET", "/health?x=1", "").await.unwrap().status, 429);
    assert_eq!(
        proxy.injected(),
        [Injected {
            action: UNCLASSIFIED.into(),
            call: 1,
            fault: throttle,
            method: "GET".into(),
            path: "/health?x=1".into()
        }]
    );
    assert_eq!(proxy.calls()[UNCLASSIFIED], 1);
}

/// Sends 500 requests over one connection and returns the faulted call numbers.
async fn faulted_calls(proxy: &FaultProxy, rule: Rule) -> Vec<u32> {
    proxy.set_rules(vec![rule]);
    proxy.clear_log();
    let mut client = Client::connect(proxy.port()).await;
    for _ in 0..500 {
        client.send("POST", "/CreateThing/1", "").await.unwrap();
    }
    proxy.injected().into_iter().map(|i| i.call).collect()
}

#[tokio::test]
async fn random_is_deterministic_per_seed_and_near_the_requested_rate() {
    let upstream = Upstream::start(None).await;
    let faults = vec![Fault::Throttle { retry_after_secs: 1 }, Fault::Throttle { retry_after_secs: 2 }];
    let rule = |seed| Rule::Random { seed, probability: 0.3, faults: faults.clone(), mutating_only: true };
    let proxy = proxy(&upstream, vec![]);

    let first = faulted_calls(&proxy, rule(42)).await;
    let log = proxy.injected();
    let again = faulted_calls(&proxy, rule(42)).await;
    let other = faulted_calls(&proxy, rule(43)).await;

    assert_eq!(first, again);
    assert_ne!(first, other);
    for calls in [&first, &other] {
        assert!((100..=200).contains(&calls.len()), "{} of 500 faulted at p = 0.3", calls.len());
    }
    // Both faults are drawn, each for a fair share.
    let ones = log.iter().filter(|i| i.fault == Fault::Throttle { retry_after_secs: 1 }).count();
    assert!(ones * 4 > log.len() && ones * 4 < log.len() * 3, "{ones} of {}", log.len());
    // Only the faulted calls were held back from the upstream.
    assert_eq!(upstream.seen().len(), 3 * 500 - first.len() - again.len() - other.len());
}

#[tokio::test]
async fn set_rules_resets_the_counters_and_keeps_the_log_until_cleared() {
    let upstream = Upstream::start(None).await;
    let fault = Fault::Throttle { retry_after_secs: 1 };
    let rule = || Rule::FirstOfEachAction { n: 1, mutating_only: true, fault: fault.clone() };
    let proxy = proxy(&upstream, vec![rule()]);
    let mut client = Client::connect(proxy.port()).await;
    assert_eq!(client.send("POST", "/CreateA/1", "").await.unwrap().status, 429);
    assert_eq!(client.send("POST", "/CreateA/1", "").await.unwrap().status, 201);
    assert_eq!(proxy.calls()["CreateA"], 2);

    proxy.set_rules(vec![rule()]);
    assert!(proxy.calls().is_empty());
    assert_eq!(client.send("POST", "/CreateA/1", "").await.unwrap().status, 429);
    assert_eq!(proxy.calls()["CreateA"], 1);
    let calls: Vec<u32> = proxy.injected().iter().map(|i| i.call).collect();
    assert_eq!(calls, [1, 1]);

    proxy.clear_log();
    assert!(proxy.injected().is_empty());
    proxy.set_rules(vec![]);
    assert_eq!(client.send("POST", "/CreateA/1", "").await.unwrap().status, 201);
    assert!(proxy.injected().is_empty());
}

#[tokio::test]
async fn concurrent_requests_are_all_answered_each_with_its_own_answer() {
    const N: usize = 20;
    // The upstream answers none until all N are in: a proxy that serialised requests would hang.
    let upstream = Upstream::start(Some(Arc::new(Barrier::new(N)))).await;
    let proxy = proxy(&upstream, vec![]);
    let port = proxy.port();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        tasks.spawn(async move {
            let answer = Client::connect(port).await.send("POST", &format!("/CreateThing/{i}"), &i.to_string()).await;
            (i, answer.unwrap())
        });
    }
    let all = tokio::time::timeout(Duration::from_secs(30), tasks.join_all()).await.expect("all answered");
    assert_eq!(all.len(), N);
    for (i, answer) in all {
        assert_eq!(answer.status, 201);
        assert_eq!(answer.body, format!("upstream saw POST /CreateThing/{i} {i}"));
    }
    assert_eq!(proxy.calls()["CreateThing"], N as u64);
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let proxy = FaultProxy::start(matih_fault_proxy::aws::options(closed, vec![]));
    let answer = send_once(proxy.port(), "GET", "/clusters").await.unwrap();
    assert_eq!(answer.status, 502);
    assert!(answer.body.contains(&closed.to_string()), "{}", answer.body);
    assert_eq!(proxy.calls()["ListClusters"], 1);
}

#[tokio::test]
async fn dropping_the_proxy_stops_it() {
    let upstream = Upstream::start(None).await;
    let proxy = proxy(&upstream, vec![]);
    let port = proxy.port();
    assert_eq!(proxy.url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(send_once(port, "GET", "/GetThing/1").await.unwrap().status, 201);
    drop(proxy);
    let err = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}
