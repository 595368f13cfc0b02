# Runs moto_server with its Route 53 change batches checked as Route 53 documents them
# (ChangeResourceRecordSets, API reference 2013-04-01), where moto 5.2.5 is kinder:
#
# - A batch is all or nothing: every change is checked against the zone as the earlier changes of
#   the same batch leave it, before any is made. moto makes them one by one.
# - CREATE of a simple record set whose name and type exist is refused ("Tried to create resource
#   record set ... but it already exists"), and only then. moto checks its change journal instead:
#   it adds a second set of the same name and type when the values differ, and refuses a CREATE
#   identical to one it journaled before even after that set was deleted. Once checked here, a
#   CREATE reaches moto as the UPSERT it is equivalent to, so moto's own check never runs.
# - DELETE of a set that is not there is refused ("... but it was not found").
# - A CNAME cannot share its name with a set of another type (RFC 1034 3.6.2): neither a CNAME
#   beside other sets nor a set beside a CNAME, whichever comes first.
#
# Refusals are moto's own InvalidChangeBatch errors (HTTP 400, code InvalidChangeBatch), as Route
# 53 answers them. Sets with a SetIdentifier (weighted, latency, ...) are left to moto.
import sys

from moto.route53.exceptions import Route53ClientError
from moto.route53.models import Route53Backend


class StrictChangeBatch(Route53ClientError):
    def __init__(self, message):
        super().__init__("InvalidChangeBatch", message)


def fqdn(name):
    return name.lower() if name.endswith(".") else name.lower() + "."


def check(zone, changes):
    # (name, type) of every simple set, as the batch goes.
    held = {(fqdn(s.name), (s.type or "").upper()) for s in zone.rrsets if not s.set_identifier}
    zone_name = fqdn(zone.name)
    for change in changes:
        rs = change["ResourceRecordSet"]
        if rs.get("SetIdentifier"):
            continue
        action = change["Action"]
        name, rtype = fqdn(rs["Name"]), (rs.get("Type") or "").upper()
        key = (name, rtype)
        if action == "DELETE":
            if key not in held:
                raise StrictChangeBatch(
                    f"Tried to delete resource record set [name='{name}', type='{rtype}'] but it was not found"
                )
            held.discard(key)
            continue
        if action == "CREATE" and key in held:
            raise StrictChangeBatch(
                f"Tried to create resource record set [name='{name}', type='{rtype}'] but it already exists"
            )
        others = {t for (n, t) in held if n == name and t != rtype}
        if rtype == "CNAME" and others:
            raise StrictChangeBatch(
                f"RRSet of type CNAME with DNS name {name} is not permitted as it conflicts with other records "
                f"with the same DNS name in zone {zone_name}"
            )
        if "CNAME" in others:
            raise StrictChangeBatch(
                f"RRSet with DNS name {name} is not permitted because a conflicting RRSet of type CNAME with "
                f"the same DNS name already exists in zone {zone_name}"
            )
        held.add(key)


original = Route53Backend.change_resource_record_sets


def change_resource_record_sets(self, zoneid, change_list):
    check(self.get_hosted_zone(zoneid), change_list)
    for change in change_list:
        if change["Action"] == "CREATE" and not change["ResourceRecordSet"].get("SetIdentifier"):
            change["Action"] = "UPSERT"
    return original(self, zoneid, change_list)


Route53Backend.change_resource_record_sets = change_resource_record_sets

# Speed, not behaviour: moto finds one EC2 resource's tags by matching every tag of every
# resource against a pattern made of its id (TaggedEC2Resource.get_tags calls describe_tags with a
# `resource-id` filter), so describing n tagged resources costs O(n * all tags). At 3,000 Elastic
# IPs one DescribeAddresses took minutes. An id has no wildcard characters, so that pattern
# matches the id alone: its tags are read straight from the backend's table, in the same order
# and shape.
from moto.ec2.models.core import TaggedEC2Resource  # noqa: E402
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix  # noqa: E402


def get_tags(self):
    if not self.id:
        return []
    kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
    held = self.ec2_backend.tags.get(self.id) or {}
    return [{"resource_id": self.id, "key": k, "value": v, "resource_type": kind} for k, v in list(held.items())]


TaggedEC2Resource.get_tags = get_tags

# Speed, not behaviour: moto's response serializer finds each field of each item it writes by
# asking six alias rules which attribute names to try (get_possible_keys): a quarter of its
# samples over eight no-op plans of 1,000 tenants (py-spy). The answer depends only on what the rules
# read: the picker and its rules, the item's class (its Meta aliases and its name), the field, and
# the field's shape and its parent shape. So it is worked out once for each of those and the same
# names are tried, in the same order. Shapes are told apart by identity, and each entry holds on
# to its shapes, so that an identity is never reused while its entry is kept.
from moto.core.serialize import XFormedAttributePicker  # noqa: E402

possible_keys = XFormedAttributePicker.get_possible_keys
known_keys = {}


def cached_possible_keys(self, context):
    shape = context.shape
    parent = getattr(shape, "parent", None)
    at = (type(self), id(self.alias_providers), type(context.obj), context.key, id(shape), id(parent))
    known = known_keys.get(at)
    if known is None:
        known = known_keys[at] = (self.alias_providers, shape, parent, tuple(possible_keys(self, context)))
    return known[3]


XFormedAttributePicker.get_possible_keys = cached_possible_keys

# Speed, not behaviour: once those names are known, the serializer looks a field up with them
# directly, without building the picker's context for each field of each item. A field whose
# names are not known yet goes through the picker as before, which learns them. Where the
# service's response transforms its fields (EC2), the first transform whose path ends the field's
# path is applied, as the picker applies it; which one that is is kept for each path and for the
# transforms as they are. moto adds transforms to that table at run time (never removes one), so
# it is told apart by its identity and its length, and each entry holds on to the table.
from moto.core.serialize import ResponseSerializer  # noqa: E402
from moto.core.utils import MISSING, get_value  # noqa: E402

serializer_get_value = ResponseSerializer.get_value
transform_paths = {}


def transform_for(transformers, key_path):
    at = (id(transformers), len(transformers), key_path)
    known = transform_paths.get(at)
    if known is None:
        path = next((p for p in transformers if key_path.endswith(p)), None)
        known = transform_paths[at] = (transformers, path)
    return None if known[1] is None else transformers[known[1]]


def known_get_value(self, value, key, shape):
    picker = self._value_picker
    if type(picker) is not XFormedAttributePicker:
        return serializer_get_value(self, value, key, shape)
    parent = getattr(shape, "parent", None)
    known = known_keys.get((XFormedAttributePicker, id(picker.alias_providers), type(value), key, id(shape), id(parent)))
    if known is None:
        return serializer_get_value(self, value, key, shape)
    for possible_key in known[3]:
        found = get_value(value, possible_key, MISSING)
        if found is not MISSING:
            break
    else:
        found = None
    transformers = picker.response_transformers
    if transformers:
        transform = transform_for(transformers, f"{'.'.join(self.path)}.{key}")
        if transform is not None:
            found = transform(found)
    return found


ResponseSerializer.get_value = known_get_value

# Speed, not behaviour: every page of ListResourceRecordSets sorts the whole zone by each name's
# labels reversed (reverse_domain_name), worked out again for every record on every page: a
# quarter of moto's samples for a 10,000-record zone. The function depends on the name alone, so
# its answers are kept (at most 2^17 names).
import functools  # noqa: E402

import moto.route53.models as route53_models  # noqa: E402

route53_models.reverse_domain_name = functools.lru_cache(maxsize=1 << 17)(route53_models.reverse_domain_name)

from moto.server import main  # noqa: E402

main(sys.argv[1:])
