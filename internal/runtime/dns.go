package runtime

import (
	"net"
	"strings"
)

// dnsForwardAddr is where a sandbox sends its DNS queries when the host's
// resolver listens on the host's loopback (systemd-resolved's 127.0.0.53,
// a local dnsmasq): the namespace has a loopback of its own, so that
// address would lead nowhere, and the host's loopback stays unreachable on
// purpose. pasta maps UDP port 53 of this address, and nothing else, to
// the host's resolver (--dns-forward). A link-local address reached over
// the default route, as Podman does with pasta: it names no real host.
const dnsForwardAddr = "169.254.1.1"

// dnsPlan is how a sandbox resolves names.
type dnsPlan struct {
	// resolvConf replaces the sandbox's /etc/resolv.conf; "" keeps the
	// host's, whose resolvers the namespace reaches like any outside
	// address.
	resolvConf string
	// pastaArgs forward dnsForwardAddr to the host's resolver: pasta
	// takes the first nameserver of /etc/resolv.conf as it (its -D option
	// only sets what DHCP announces, in the pasta Debian 12 ships).
	pastaArgs []string
}

// planDNS decides from the host's /etc/resolv.conf. Only the first
// nameserver matters (pasta forwards to one): when it is on the IPv4
// loopback, the sandbox's resolv.conf names dnsForwardAddr instead, with the
// host's search and options lines kept. With egress denied there is no
// route out and so no DNS either: nothing is forwarded.
func planDNS(hostResolvConf string, egress bool) dnsPlan {
	if !egress {
		return dnsPlan{}
	}
	var first string
	var keep []string
	for _, line := range strings.Split(hostResolvConf, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if first == "" {
				first = f[1]
			}
			continue
		}
		if len(f) > 0 && (f[0] == "search" || f[0] == "domain" || f[0] == "options") {
			keep = append(keep, strings.Join(f, " "))
		}
	}
	ip := net.ParseIP(first)
	if ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return dnsPlan{}
	}
	conf := "# written by glenv: the host's resolver " + first + " is on its loopback, reached through pasta\nnameserver " + dnsForwardAddr + "\n"
	for _, k := range keep {
		conf += k + "\n"
	}
	return dnsPlan{resolvConf: conf, pastaArgs: []string{"--dns-forward", dnsForwardAddr}}
}
