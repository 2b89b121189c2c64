package hostscan

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Main classes of a ZooKeeper server JVM.
const (
	mainQuorumPeer = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
	mainStandalone = "org.apache.zookeeper.server.ZooKeeperServerMain"
)

// Discovered is a ZooKeeper server process found on this host.
type Discovered struct {
	PID        int
	MainClass  string
	ConfigPath string     // as the process names it
	Config     *ZooConfig // nil when unreadable
	ConfigErr  string     // why Config is nil
	MyID       int        // from dataDir/myid, 0 when unknown
	// Client is this server's own client endpoint (host:port), reachable
	// from this host; "" when the config does not say.
	Client string
	// Admin is its AdminServer (host:port), "" when disabled or unknown.
	Admin string
	// Members are the other ensemble members' client endpoints, when the
	// server lines say them ("…;2181"): named by discovery, so rstwatch may
	// probe them when a reset touches them.
	Members []string
}

// Discover scans procRoot (DefaultProcRoot in production) for ZooKeeper
// server JVMs and reads their configuration. Processes that vanish or
// cannot be read are skipped: a scan is a snapshot of a moving system.
func Discover(procRoot string) ([]Discovered, error) {
	ps, err := pids(procRoot)
	if err != nil {
		return nil, fmt.Errorf("discover ZooKeeper servers: %w", err)
	}
	var out []Discovered
	for _, pid := range ps {
		p := proc{root: procRoot, pid: pid}
		args, err := p.cmdline()
		if err != nil || len(args) == 0 {
			continue
		}
		if d, ok := discoverOne(p, args); ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// ServerMainClass returns the ZooKeeper server main class in a java
// command line and its index, or "" and -1.
func ServerMainClass(args []string) (string, int) {
	jc := ParseJavaCommand(args)
	if jc.MainClass == mainQuorumPeer || jc.MainClass == mainStandalone {
		return jc.MainClass, jc.MainIndex
	}
	return "", -1
}

func discoverOne(p proc, args []string) (Discovered, bool) {
	main, idx := ServerMainClass(args)
	if idx < 0 {
		return Discovered{}, false
	}
	d := Discovered{PID: p.pid, MainClass: main}
	// The config is the last argument that is a file (zkServer.sh passes
	// it last; ZooKeeperServerMain also accepts "port dataDir").
	for i := len(args) - 1; i > idx; i-- {
		if fi, err := os.Stat(p.file(args[i])); err == nil && fi.Mode().IsRegular() {
			d.ConfigPath = args[i]
			break
		}
	}
	if d.ConfigPath == "" {
		d.ConfigErr = "no config file argument"
		if idx+1 < len(args) {
			if port, err := strconv.Atoi(args[idx+1]); err == nil {
				d.Config = &ZooConfig{ClientPort: port, AdminEnabled: true, AdminAddress: "0.0.0.0", AdminPort: DefaultAdminPort}
				d.ConfigErr = ""
			}
		}
	} else {
		b, err := readBounded(p.file(d.ConfigPath))
		if err == nil {
			d.Config, err = ParseZooCfg(b)
		}
		if err != nil {
			d.ConfigErr = err.Error()
		}
	}
	if d.Config == nil {
		return d, true
	}
	applySystemProps(d.Config, args[:idx])
	if d.Config.DynamicConfigFile != "" {
		if b, err := readBounded(p.file(d.Config.DynamicConfigFile)); err == nil {
			if dyn, err := ParseZooCfg(b); err == nil {
				d.Config.Servers = append(d.Config.Servers, dyn.Servers...)
			}
		}
	}
	if d.Config.DataDir != "" {
		if b, err := readBounded(p.file(filepath.Join(d.Config.DataDir, "myid"))); err == nil {
			d.MyID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	d.Client, d.Admin, d.Members = targetsOf(d.Config, d.MyID)
	return d, true
}

// applySystemProps honours -Dzookeeper.admin.* and -Dzookeeper.4lw.* on
// the java command line, which override zoo.cfg.
func applySystemProps(c *ZooConfig, jvmArgs []string) {
	for _, a := range jvmArgs {
		kv, ok := strings.CutPrefix(a, "-Dzookeeper.")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch k {
		case "admin.enableServer", "admin.serverAddress", "admin.serverPort", "4lw.commands.whitelist":
			c.set(k, v) // a bad value keeps the zoo.cfg one
		}
	}
}

func targetsOf(c *ZooConfig, myID int) (client, admin string, members []string) {
	port, addr := c.ClientPort, c.ClientPortAddress
	for _, s := range c.Servers {
		if s.ID == myID && myID != 0 {
			if port == 0 {
				port, addr = s.ClientPort, s.ClientAddr
			}
			continue
		}
		if ep := s.ClientEndpoint(); ep != "" {
			members = append(members, ep)
		}
	}
	if port != 0 {
		client = net.JoinHostPort(localHost(addr), strconv.Itoa(port))
	}
	if c.AdminEnabled && c.AdminPort != 0 {
		admin = net.JoinHostPort(localHost(c.AdminAddress), strconv.Itoa(c.AdminPort))
	}
	return client, admin, members
}
