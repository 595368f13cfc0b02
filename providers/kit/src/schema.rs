//! The schema builder: a resource type's attributes by role, with named flags instead of
//! positional ones.
//!
//! ```
//! let s = matih_provider_kit::schema("eks", "subnet")
//!     .force_new(&["vpc_id", "cidr"])
//!     .updatable(&["tags"])
//!     .computed(&["id"])
//!     .build();
//! assert!(s.attr("cidr").unwrap().force_new);
//! ```

use matih_plans::{AttrSchema, ResourceType, TypeSchema};

/// Starts the schema of `group.kind` (unprotected, unbatched, version 0).
pub fn schema(group: &str, kind: &str) -> SchemaBuilder {
    SchemaBuilder(TypeSchema {
        rtype: ResourceType::new(group, kind).expect("static type name"),
        attributes: Vec::new(),
        create_before_destroy: false,
        protected_by_default: false,
        batched: false,
        parts: None,
        version: 0,
    })
}

/// See [`schema`].
#[derive(Debug, Clone)]
pub struct SchemaBuilder(TypeSchema);

impl SchemaBuilder {
    /// Attributes whose change means the resource must be replaced.
    pub fn force_new(mut self, names: &[&str]) -> Self {
        self.0.attributes.extend(names.iter().map(|n| AttrSchema::force_new(n)));
        self
    }

    /// Attributes the provider can change in place.
    pub fn updatable(mut self, names: &[&str]) -> Self {
        self.0.attributes.extend(names.iter().map(|n| AttrSchema::updatable(n)));
        self
    }

    /// Attributes the cloud sets (ids, ARNs, endpoints).
    pub fn computed(mut self, names: &[&str]) -> Self {
        self.0.attributes.extend(names.iter().map(|n| AttrSchema::computed(n)));
        self
    }

    /// Networks, clusters, zones, reserved addresses: never replaced or deleted without asking.
    pub fn protected(mut self) -> Self {
        self.0.protected_by_default = true;
        self
    }

    /// Changes of one apply reach the provider together (DNS records).
    pub fn batched(mut self) -> Self {
        self.0.batched = true;
        self
    }

    /// A second instance may exist while the first is still there.
    pub fn create_before_destroy(mut self) -> Self {
        self.0.create_before_destroy = true;
        self
    }

    /// The version of the recorded attributes (see `Provider::upgrade`).
    /// The attribute (a map) whose entries are the resource's parts, shown part by part in
    /// plans and drift.
    pub fn parts(mut self, attr: &str) -> Self {
        self.0.parts = Some(attr.to_string());
        self
    }

    pub fn version(mut self, v: u32) -> Self {
        self.0.version = v;
        self
    }

    pub fn build(self) -> TypeSchema {
        let mut seen = std::collections::BTreeSet::new();
        for a in &self.0.attributes {
            assert!(seen.insert(&a.name), "{}: attribute {} declared twice", self.0.rtype, a.name);
        }
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_flags_are_what_they_say() {
        let s = schema("dns", "record")
            .force_new(&["zone_id"])
            .updatable(&["ttl"])
            .computed(&["id"])
            .protected()
            .batched()
            .version(2)
            .build();
        assert_eq!(s.rtype.to_string(), "dns.record");
        let a = |n: &str| s.attr(n).unwrap().clone();
        assert!(a("zone_id").force_new && !a("zone_id").computed);
        assert!(!a("ttl").force_new && !a("ttl").computed);
        assert!(a("id").computed);
        assert!(s.protected_by_default && s.batched && !s.create_before_destroy);
        assert_eq!(s.version, 2);
    }

    #[test]
    #[should_panic(expected = "declared twice")]
    fn an_attribute_declared_twice_is_a_bug() {
        schema("x", "y").updatable(&["a"]).computed(&["a"]).build();
    }
}
