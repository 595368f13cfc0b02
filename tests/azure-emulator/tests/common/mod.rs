//! Helpers shared by the integration tests: a raw HTTP/1.1 client over `std::net::TcpStream` (one
//! connection per request, `Connection: close`), ARM paths, and a little setup.
//!
//! Deliberately not an ARM SDK: the tests see the exact status codes, headers and JSON.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use matih_azure_emulator::AzureEmulator;
use serde_json::{Value, json};

pub const SUB: &str = "00000000-0000-0000-0000-0000000000aa";
pub const NET: &str = "2024-05-01";
pub const DNS: &str = "2018-05-01";
pub const AKS: &str = "2025-05-01";
pub const MSI: &str = "2023-01-31";
pub const RG_API: &str = "2024-03-01";
pub const AUTHZ: &str = "2022-04-01";

/// `/subscriptions/{SUB}/resourcegroups/{rg}`.
pub fn group(rg: &str) -> String {
    format!("/subscriptions/{SUB}/resourcegroups/{rg}")
}

/// `{group}/providers/{rest}`.
pub fn res(rg: &str, rest: &str) -> String {
    format!("{}/providers/{rest}", group(rg))
}

/// An answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Null when there is no body.
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `error.code` of an ARM error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    /// Panics unless the status is `status`.
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(self.status, status, "unexpected answer: {self:#?}");
        self
    }
}

/// A client for one emulator.
pub struct Arm {
    pub base: String,
    pub token: Option<String>,
}

impl Arm {
    pub fn new(em: &AzureEmulator) -> Arm {
        Arm { base: em.url(), token: None }
    }

    pub fn with_token(em: &AzureEmulator, token: &str) -> Arm {
        Arm { base: em.url(), token: Some(token.to_string()) }
    }

    /// A request to `target`: an absolute URL on the emulator, or a path to which `api` is
    /// appended as `api-version`.
    pub fn call(&self, method: &str, target: &str, api: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Resp {
        let path = match target.strip_prefix(&self.base) {
            Some(p) => p.to_string(),
            None if api.is_empty() => target.to_string(),
            None => format!("{target}{}api-version={api}", if target.contains('?') { '&' } else { '?' }),
        };
        let host = self.base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).expect("the emulator accepts connections");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let payload = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
            payload.len()
        );
        if body.is_some() {
            head.push_str("Content-Type: application/json\r\n");
        }
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&payload).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("an answer");
        parse(&raw)
    }

    pub fn get(&self, path: &str, api: &str) -> Resp {
        self.call("GET", path, api, None, &[])
    }

    pub fn put(&self, path: &str, api: &str, body: Value) -> Resp {
        self.call("PUT", path, api, Some(&body), &[])
    }

    pub fn delete(&self, path: &str, api: &str) -> Resp {
        self.call("DELETE", path, api, None, &[])
    }

    pub fn post(&self, path: &str, api: &str) -> Resp {
        self.call("POST", path, api, None, &[])
    }

    /// Polls an `Azure-AsyncOperation` URL until the status is terminal; returns every status seen.
    pub fn wait_async(&self, url: &str, deadline: Duration) -> Vec<String> {
        let start = Instant::now();
        let mut seen = Vec::new();
        loop {
            let r = self.get(url, "").expect(200);
            let status = r.body["status"].as_str().expect("a status").to_string();
            seen.push(status.clone());
            if status != "InProgress" {
                return seen;
            }
            assert!(start.elapsed() < deadline, "still InProgress after {deadline:?}: {seen:?}");
            std::thread::sleep(Duration::from_millis(25)); // a client's poll interval, not a synchronisation
        }
    }

    /// Every item of a paged list, following `nextLink`; returns the items and the page count.
    pub fn list_all(&self, path: &str, api: &str) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut pages = 0;
        let mut next = Some((path.to_string(), api.to_string()));
        while let Some((target, api)) = next.take() {
            let r = self.get(&target, &api).expect(200);
            pages += 1;
            items.extend(r.body["value"].as_array().expect("a value array").iter().cloned());
            next = r.body["nextLink"].as_str().map(|l| (l.to_string(), String::new()));
        }
        (items, pages)
    }

    /// PUT a resource group in westeurope.
    pub fn group(&self, rg: &str) {
        let r = self.put(&group(rg), RG_API, json!({"location": "westeurope"}));
        assert!(r.status == 201 || r.status == 200, "{r:#?}");
    }

    /// PUT a VNet with address space `space` and subnets `(name, prefix)`.
    pub fn vnet(&self, rg: &str, name: &str, space: &str, subnets: &[(&str, &str)]) -> Resp {
        let subnets: Vec<Value> =
            subnets.iter().map(|(n, p)| json!({"name": n, "properties": {"addressPrefix": p}})).collect();
        self.put(
            &res(rg, &format!("Microsoft.Network/virtualNetworks/{name}")),
            NET,
            json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": [space]}, "subnets": subnets}}),
        )
    }
}

fn parse(raw: &[u8]) -> Resp {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let body = &raw[split + 4..];
    let body = if body.is_empty() { Value::Null } else { serde_json::from_slice(body).expect("a JSON body") };
    Resp { status, headers, body }
}

/// A cluster PUT body: one System pool in `subnet`, the given service CIDR and DNS service IP.
pub fn cluster_body(subnet: &str, service_cidr: &str, dns_ip: &str) -> Value {
    json!({
        "location": "westeurope",
        "tags": {"matih": "platform"},
        "identity": {"type": "SystemAssigned"},
        "sku": {"name": "Base", "tier": "Standard"},
        "properties": {
            "kubernetesVersion": "1.33",
            "dnsPrefix": "matih",
            "enableRBAC": true,
            "agentPoolProfiles": [{
                "name": "system", "mode": "System", "vmSize": "Standard_D4s_v5", "count": 3, "minCount": 3,
                "maxCount": 5, "enableAutoScaling": true, "type": "VirtualMachineScaleSets", "osType": "Linux",
                "maxPods": 110, "vnetSubnetID": subnet,
            }],
            "networkProfile": {
                "networkPlugin": "azure", "networkPolicy": "calico", "serviceCidr": service_cidr,
                "dnsServiceIP": dns_ip, "loadBalancerSku": "standard", "outboundType": "loadBalancer",
            },
            "oidcIssuerProfile": {"enabled": true},
            "securityProfile": {"workloadIdentity": {"enabled": true}},
        }
    })
}
