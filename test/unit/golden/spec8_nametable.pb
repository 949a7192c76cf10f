
'
*.b.wildcard
11.11.11.11External
.
*.svc.mesh.company.net
10.1.2.3External
%

*.wildcard
10.10.10.10External
p
details.ns2.svc.cluster.remoteN
11.11.11.11
12.12.12.12
13.13.13.13
14.14.14.14
Kubernetesdetails"ns2
=
dual.localhost+
2.2.2.2
2001:db8::ff00:42:8329External
)
example.localhost.
3.3.3.3External
H
example.ns2.svc.cluster.local'
10.10.10.10
Kubernetesexample"ns2
%
ipv4.localhost
2.2.2.2External
4
ipv6.localhost"
2001:db8::ff00:42:8329External
L
!productpage.ns1.svc.cluster.local'
9.9.9.9
Kubernetesproductpage"ns1
y
"svc-with-alt.ns1.svc.cluster.localS
15.15.15.15
Kubernetessvc-with-alt"ns1*%svc-with-alt.ns1.svc.clusterset.local
%
www.google.com
1.1.1.1External