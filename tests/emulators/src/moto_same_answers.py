# Checks that the speed patches of moto_strict.py (the path given) change no answer: one moto,
# in process (mock_aws, no server, no network), holds a small platform (a VPC, subnets, 200
# tagged Elastic IPs, instances, an interface, a peering connection, a zone of 700 records, an IAM
# role and OIDC provider, an EKS cluster), and the same reads are made with moto's own functions,
# with the patched ones, with the patched ones again (their kept answers in use) and with moto's
# once more. Every response body must be the same byte for byte, request ids aside. Prints what
# differs and exits 1 if anything does.
#
# The reads include EC2 fields that moto's response transforms rewrite (instances' tags, images'
# creation dates), paged and started Route 53 listings, and an error.
import os
import re
import sys

os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "false"

wrapper = open(sys.argv[1]).read()
wrapper = wrapper[: wrapper.index("from moto.server import main")]

import boto3  # noqa: E402
import moto.core.serialize as serialize  # noqa: E402
import moto.route53.models as route53_models  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.ec2.models.core import TaggedEC2Resource  # noqa: E402


def patched():
    return (
        serialize.ResponseSerializer.get_value,
        serialize.XFormedAttributePicker.get_possible_keys,
        route53_models.reverse_domain_name,
        TaggedEC2Resource.get_tags,
    )


def use(functions):
    (
        serialize.ResponseSerializer.get_value,
        serialize.XFormedAttributePicker.get_possible_keys,
        route53_models.reverse_domain_name,
        TaggedEC2Resource.get_tags,
    ) = functions


moto_own = patched()
exec(compile(wrapper, sys.argv[1], "exec"), {"__name__": "moto_strict"})
speed = patched()
unpatched = [i for i, (a, b) in enumerate(zip(moto_own, speed)) if a is b]
assert not unpatched, f"the wrapper no longer patches functions {unpatched} of those this check compares"

REQUEST_ID = re.compile(rb"<RequestId>[^<]*</RequestId>|<requestId>[^<]*</requestId>|\"requestId\": ?\"[^\"]*\"")
bodies = []


def keep(http_response, **_):
    bodies.append(REQUEST_ID.sub(b"", http_response.content))


with mock_aws():
    ec2, r53, iam, eks = (boto3.client(s, region_name="us-east-1") for s in ("ec2", "route53", "iam", "eks"))
    tags = lambda kind, **t: [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in t.items()]}]  # noqa: E731
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=tags("vpc", platform="matih"))["Vpc"]["VpcId"]
    peer = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(
            VpcId=vpc,
            CidrBlock=f"10.0.{i}.0/24",
            AvailabilityZone=f"us-east-1{'abc'[i]}",
            TagSpecifications=tags("subnet", n=str(i)),
        )["Subnet"]["SubnetId"]
        for i in range(3)
    ]
    for i in range(200):
        ec2.allocate_address(Domain="vpc", TagSpecifications=tags("elastic-ip", name=f"t{i}", platform="matih"))
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.create_security_group(GroupName="g", Description="d", VpcId=vpc)
    ec2.create_route_table(VpcId=vpc)
    ec2.create_vpc_peering_connection(VpcId=vpc, PeerVpcId=peer)
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=ami, MinCount=2, MaxCount=2, SubnetId=subnets[0])
    ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnets[0], TagSpecifications=tags("instance", a="b"))
    ec2.create_network_interface(SubnetId=subnets[1])
    zone = r53.create_hosted_zone(Name="matih.ai", CallerReference="check")["HostedZone"]["Id"]
    records = [
        {"Name": f"t{i}.matih.ai", "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": "ingress.matih.ai"}]}
        if i % 3
        else {"Name": f"t{i}.matih.ai", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": f"192.0.2.{i % 250}"}]}
        for i in range(700)
    ]
    r53.change_resource_record_sets(
        HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": r} for r in records]}
    )
    iam.create_role(RoleName="r", Path="/matih/", AssumeRolePolicyDocument="{}")
    iam.create_open_id_connect_provider(
        Url="https://oidc.example.com/x", ThumbprintList=["a" * 40], ClientIDList=["sts.amazonaws.com"]
    )
    eks.create_cluster(name="c", roleArn="arn:aws:iam::123456789012:role/matih/r", resourcesVpcConfig={"subnetIds": subnets})

    def reads():
        ec2.describe_addresses()
        ec2.describe_vpcs()
        ec2.describe_subnets()
        ec2.describe_route_tables()
        ec2.describe_security_groups()
        ec2.describe_internet_gateways()
        ec2.describe_nat_gateways()
        ec2.describe_vpc_peering_connections()
        ec2.describe_tags()
        ec2.describe_instances()
        ec2.describe_network_interfaces()
        ec2.describe_images(ImageIds=[ami])
        ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsSupport")
        start = {}
        while True:
            page = r53.list_resource_record_sets(HostedZoneId=zone, MaxItems="300", **start)
            if not page["IsTruncated"]:
                break
            start = {"StartRecordName": page["NextRecordName"], "StartRecordType": page["NextRecordType"]}
        r53.list_resource_record_sets(HostedZoneId=zone, StartRecordName="t5.matih.ai", StartRecordType="A")
        r53.get_hosted_zone(Id=zone)
        r53.list_hosted_zones_by_name(DNSName="matih.ai")
        r53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone.split("/")[-1])
        iam.get_account_authorization_details(Filter=["Role"])
        iam.list_open_id_connect_providers()
        eks.describe_cluster(name="c")
        eks.list_clusters()
        try:
            ec2.describe_addresses(AllocationIds=["eipalloc-00000000"])
        except ec2.exceptions.ClientError:
            pass

    for client in (ec2, r53, iam, eks):
        client.meta.events.register("after-call", keep)
    answers = {}
    for label, functions in (("moto's", moto_own), ("patched", speed), ("patched again", speed), ("moto's again", moto_own)):
        use(functions)
        bodies.clear()
        reads()
        answers[label] = list(bodies)

counts = {label: len(b) for label, b in answers.items()}
if len(set(counts.values())) != 1:
    print(f"different numbers of responses: {counts}")
    sys.exit(1)
first = answers["moto's"]
differ = [i for i in range(len(first)) if len({a[i] for a in answers.values()}) != 1]
print(f"{len(first)} responses, {sum(map(len, first))} bytes each way; differing: {differ}")
for i in differ:
    for label, a in answers.items():
        print(f"--- {label}, response {i}:\n{a[i][:4000]!r}")
sys.exit(1 if differ else 0)
