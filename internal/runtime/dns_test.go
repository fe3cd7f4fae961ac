package runtime

import (
	"reflect"
	"testing"
)

func TestPlanDNS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		host   string
		egress bool
		want   dnsPlan
	}{
		{"a resolver on the host's loopback is reached through pasta's forward address", "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n", true,
			dnsPlan{resolvConf: "# written by glenv: the host's resolver 127.0.0.53 is on its loopback, reached through pasta\nnameserver 169.254.1.1\noptions edns0 trust-ad\nsearch corp.example\n",
				pastaArgs: []string{"--dns-forward", "169.254.1.1"}}},
		{"a resolver elsewhere is reached like any outside address: the host's file stays", "nameserver 10.255.255.53\n", true, dnsPlan{}},
		{"only the first resolver counts, as pasta forwards to one", "nameserver 10.0.0.2\nnameserver 127.0.0.1\n", true, dnsPlan{}},
		{"with egress denied nothing is forwarded", "nameserver 127.0.0.53\n", false, dnsPlan{}},
		{"an IPv6 loopback resolver is not forwarded to an IPv4 address", "nameserver ::1\n", true, dnsPlan{}},
		{"no resolver, nothing to forward", "# empty\n", true, dnsPlan{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := planDNS(tc.host, tc.egress); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}
