// Command validate-compose checks deploy/docker/compose.yaml without a Docker
// engine, with compose-go: the loader Docker Compose itself runs, which
// validates the file against the Compose Specification's JSON schema (kept in
// the module, schema/compose-spec.json, pinned by go.sum), interpolates it,
// and checks that every service, network and volume it names is defined.
//
// On the loaded project, for the profiles and environment file given, it then
// checks what the schema cannot know:
//   - every bind-mounted file or directory exists inside the repository;
//   - every service run from the mamochi image has a command that the
//     `mamochi` binary accepts (`mamochi <command> --help` exits 0), and
//     settings it accepts: `mamochi config check` passes with exactly the
//     image's ENV (-image-env) and the service's environment, as `mamochi
//     run` would read them in the container;
//   - every long-running mamochi service has a healthcheck, a restart policy
//     and a stop grace period of at least 30 s (time to commit offsets);
//   - the mamochi services' Kafka, PostgreSQL, SMTP and registry addresses
//     name services of the project;
//   - the Kafka nodes form one quorum: the controller voters are exactly the
//     Kafka services, by node id, and the replication settings fit the number
//     of brokers (min.insync.replicas below the replication factor when it is
//     above 1).
//
// It prints one line per check family and exits 1 listing every problem.
//
// With -dockerignore it checks the image's build context instead (see
// dockerignore.go).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// minGrace is the shortest stop_grace_period a platform service may have:
// time to drain, commit offsets and leave its consumer group on SIGTERM.
const minGrace = 30 * time.Second

type checker struct {
	problems []string
}

func (c *checker) fail(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func main() {
	file := flag.String("file", "", "the compose file")
	projectDir := flag.String("project-dir", "", "the directory relative paths start from [default: the file's]")
	envFile := flag.String("env-file", "", "an environment file, as `docker compose --env-file` reads it")
	profiles := flag.String("profiles", "", "comma-separated profiles to enable (* for all)")
	root := flag.String("root", "", "the repository root: bind mounts must exist inside it")
	mamochi := flag.String("mamochi", "", "the mamochi binary that must accept every command")
	image := flag.String("image", "mamochi:local", "the mamochi image reference, as the compose file resolves it")
	imageEnvFile := flag.String("image-env", "", "a file of KEY=VALUE lines: the image's ENV (Dockerfile)")
	dockerignore := flag.String("dockerignore", "", "check this .dockerignore instead (files on standard input)")
	var need, drop multiFlag
	flag.Var(&need, "need", "with -dockerignore: a path (prefix) the build reads (repeatable)")
	flag.Var(&drop, "drop", "with -dockerignore: a path that must stay out of the context (repeatable)")
	flag.Parse()
	if *dockerignore != "" {
		problems, err := checkDockerignore(*dockerignore, os.Stdin, need, drop)
		if err != nil {
			fmt.Fprintf(os.Stderr, "dockerignore: %v\n", err)
			os.Exit(2)
		}
		for _, problem := range problems {
			fmt.Fprintf(os.Stderr, "dockerignore: %s\n", problem)
		}
		if len(problems) > 0 {
			os.Exit(1)
		}
		return
	}
	if *file == "" || *root == "" || *mamochi == "" {
		fmt.Fprintln(os.Stderr, "usage: validate-compose -file F -root DIR -mamochi BIN [-env-file F] [-profiles P]")
		os.Exit(2)
	}

	if *projectDir == "" {
		*projectDir = filepath.Dir(*file)
	}
	project, label, err := load(*file, *projectDir, *envFile, *profiles)
	if err != nil {
		fmt.Fprintf(os.Stderr, "compose: %v\n", err)
		os.Exit(1)
	}
	if label == "" {
		label = "none"
	}
	if *envFile != "" {
		label += ", env file " + filepath.Base(*envFile)
	}
	fmt.Printf("compose: %s (profiles: %s): valid against the Compose Specification, references resolved, %d services\n",
		filepath.Base(*file), label, len(project.Services))

	c := &checker{}
	rootAbs, err := filepath.Abs(*root)
	if err != nil {
		fmt.Fprintf(os.Stderr, "compose: %v\n", err)
		os.Exit(2)
	}
	c.bindMounts(project, rootAbs)
	imageEnv, err := readImageEnv(*imageEnvFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "compose: %v\n", err)
		os.Exit(2)
	}
	c.mamochiServices(project, *image, *mamochi, imageEnv)
	c.addresses(project, *image)
	c.kafkaQuorum(project)

	if len(c.problems) > 0 {
		for _, problem := range c.problems {
			fmt.Fprintf(os.Stderr, "compose: %s\n", problem)
		}
		fmt.Fprintf(os.Stderr, "compose: %d problems\n", len(c.problems))
		os.Exit(1)
	}
	fmt.Println("compose: no problem")
}

// load reads the file as `docker compose` would, with only the environment
// file's variables (not this shell's), so the result does not depend on who
// runs the check. Without -profiles, COMPOSE_PROFILES from the environment
// file chooses them, as it does for `docker compose`. It returns the project
// and the profiles it was loaded with.
func load(file, projectDir, envFile, profiles string) (*types.Project, string, error) {
	var enabled []string
	if profiles != "" {
		enabled = strings.Split(profiles, ",")
	}
	options := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(projectDir),
		cli.WithResolvedPaths(true),
	}
	if envFile != "" {
		options = append(options, cli.WithEnvFiles(envFile), cli.WithDotEnv)
	}
	options = append(options, cli.WithDefaultProfiles(enabled...))
	opts, err := cli.NewProjectOptions([]string{file}, options...)
	if err != nil {
		return nil, "", err
	}
	if profiles == "" {
		profiles = opts.Environment["COMPOSE_PROFILES"]
	}
	project, err := opts.LoadProject(context.Background())
	return project, profiles, err
}

func sortedServices(project *types.Project) []types.ServiceConfig {
	services := make([]types.ServiceConfig, 0, len(project.Services))
	for _, service := range project.Services {
		services = append(services, service)
	}
	sort.Slice(services, func(i, j int) bool { return services[i].Name < services[j].Name })
	return services
}

func (c *checker) bindMounts(project *types.Project, root string) {
	count := 0
	for _, service := range sortedServices(project) {
		for _, volume := range service.Volumes {
			if volume.Type != types.VolumeTypeBind {
				continue
			}
			count++
			rel, err := filepath.Rel(root, volume.Source)
			if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
				c.fail("%s mounts %s, outside the repository", service.Name, volume.Source)
				continue
			}
			if _, err := os.Stat(volume.Source); err != nil {
				c.fail("%s mounts %s, which does not exist", service.Name, rel)
			}
		}
	}
	fmt.Printf("compose: %d bind mounts checked against the repository\n", count)
}

func isMamochi(service types.ServiceConfig, image string) bool {
	return service.Image == image
}

// longRunning: a service that stays up (a platform service or the registry),
// as opposed to the one-shot steps (migrate, topics, schemas register).
func longRunning(service types.ServiceConfig) bool {
	return len(service.Command) > 0 && (service.Command[0] == "run" || service.Command[0] == "registry")
}

// readImageEnv reads KEY=VALUE lines (none when path is empty).
func readImageEnv(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var env []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			env = append(env, line)
		}
	}
	return env, nil
}

// containerEnv is the environment `mamochi` sees in the service's container:
// the image's ENV, then the service's (a variable left without a value in
// the compose file, and not set by the environment file, is not set).
func containerEnv(service types.ServiceConfig, imageEnv []string) []string {
	env := append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, imageEnv...)
	keys := make([]string, 0, len(service.Environment))
	for key := range service.Environment {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if value := service.Environment[key]; value != nil {
			env = append(env, key+"="+*value)
		}
	}
	return env
}

func (c *checker) mamochiServices(project *types.Project, image, binary string, imageEnv []string) {
	count := 0
	for _, service := range sortedServices(project) {
		if !isMamochi(service, image) {
			continue
		}
		count++
		if len(service.Command) == 0 {
			c.fail("%s runs the mamochi image without a command", service.Name)
			continue
		}
		args := append(append([]string{}, service.Command...), "--help")
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err != nil {
			first := strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
			c.fail("%s: `mamochi %s` is not a mamochi command: %s", service.Name, strings.Join(service.Command, " "), first)
		}
		check := exec.Command(binary, "config", "check")
		check.Env = containerEnv(service, imageEnv)
		if out, err := check.CombinedOutput(); err != nil {
			c.fail("%s: `mamochi config check` refuses its settings:\n%s", service.Name, strings.TrimSpace(string(out)))
		}
		if !longRunning(service) {
			continue
		}
		if service.HealthCheck == nil || service.HealthCheck.Disable || len(service.HealthCheck.Test) == 0 {
			c.fail("%s has no healthcheck", service.Name)
		}
		if service.Restart == "" || service.Restart == "no" {
			c.fail("%s has no restart policy", service.Name)
		}
		if service.StopGracePeriod == nil || time.Duration(*service.StopGracePeriod) < minGrace {
			c.fail("%s: stop_grace_period under %s leaves no time to commit offsets", service.Name, minGrace)
		}
	}
	fmt.Printf("compose: %d mamochi services checked: commands (`%s <command> --help`), settings (`config check`), healthchecks, restart policies, grace periods\n", count, filepath.Base(binary))
}

// hostOf returns the host part of "host:port".
func hostOf(hostPort string) string {
	host := hostPort
	if i := strings.LastIndex(hostPort, ":"); i >= 0 {
		host = hostPort[:i]
	}
	return host
}

func (c *checker) addresses(project *types.Project, image string) {
	known := map[string]bool{}
	for name := range project.Services {
		known[name] = true
	}
	checked := 0
	expect := func(service, setting, host string) {
		checked++
		if !known[host] {
			c.fail("%s: %s names %q, which is not a service of this project", service, setting, host)
		}
	}
	for _, service := range sortedServices(project) {
		if !isMamochi(service, image) {
			continue
		}
		env := service.Environment
		get := func(key string) (string, bool) {
			value, ok := env[key]
			if !ok || value == nil {
				return "", false
			}
			return *value, true
		}
		if servers, ok := get("MAMOCHI__KAFKA__BOOTSTRAP_SERVERS"); ok {
			for _, server := range strings.Split(servers, ",") {
				expect(service.Name, "MAMOCHI__KAFKA__BOOTSTRAP_SERVERS", hostOf(strings.TrimSpace(server)))
			}
		} else {
			c.fail("%s: MAMOCHI__KAFKA__BOOTSTRAP_SERVERS is not set", service.Name)
		}
		for _, key := range []string{"MAMOCHI__DATABASE__URL", "MAMOCHI__REGISTRY__URL"} {
			raw, ok := get(key)
			if !ok {
				c.fail("%s: %s is not set", service.Name, key)
				continue
			}
			parsed, err := url.Parse(raw)
			if err != nil {
				c.fail("%s: %s is not a URL", service.Name, key)
				continue
			}
			expect(service.Name, key, parsed.Hostname())
		}
		if host, ok := get("MAMOCHI__SMTP__HOST"); ok {
			expect(service.Name, "MAMOCHI__SMTP__HOST", host)
		} else {
			c.fail("%s: MAMOCHI__SMTP__HOST is not set", service.Name)
		}
	}
	fmt.Printf("compose: %d addresses of the mamochi services checked against the project's services\n", checked)
}

func envInt(service types.ServiceConfig, key string) (int, bool) {
	value, ok := service.Environment[key]
	if !ok || value == nil {
		return 0, false
	}
	n, err := strconv.Atoi(*value)
	return n, err == nil
}

func (c *checker) kafkaQuorum(project *types.Project) {
	nodes := map[string]int{} // service name -> node id
	var brokers []types.ServiceConfig
	for _, service := range sortedServices(project) {
		if !strings.HasPrefix(service.Image, "apache/kafka:") {
			continue
		}
		brokers = append(brokers, service)
		id, ok := envInt(service, "KAFKA_NODE_ID")
		if !ok {
			c.fail("%s: KAFKA_NODE_ID is missing or not a number", service.Name)
			continue
		}
		nodes[service.Name] = id
	}
	if len(brokers) == 0 {
		c.fail("no apache/kafka service")
		return
	}
	for _, broker := range brokers {
		votersValue := broker.Environment["KAFKA_CONTROLLER_QUORUM_VOTERS"]
		if votersValue == nil {
			c.fail("%s: KAFKA_CONTROLLER_QUORUM_VOTERS is missing", broker.Name)
			continue
		}
		voters := map[string]int{}
		for _, voter := range strings.Split(*votersValue, ",") {
			idText, hostPort, found := strings.Cut(strings.TrimSpace(voter), "@")
			id, err := strconv.Atoi(idText)
			if !found || err != nil {
				c.fail("%s: quorum voter %q is not id@host:port", broker.Name, voter)
				continue
			}
			voters[hostOf(hostPort)] = id
		}
		for _, node := range brokers {
			if id, ok := nodes[node.Name]; ok && voters[node.Name] != id {
				c.fail("%s: the quorum voters (%s) do not name Kafka service %s as node %d", broker.Name, *votersValue, node.Name, id)
			}
		}
		hosts := make([]string, 0, len(voters))
		for host := range voters {
			hosts = append(hosts, host)
		}
		sort.Strings(hosts)
		for _, host := range hosts {
			if _, ok := nodes[host]; !ok {
				c.fail("%s: quorum voter %s is not a Kafka service of this project (profile off?)", broker.Name, host)
			}
		}
		rf, okRF := envInt(broker, "KAFKA_DEFAULT_REPLICATION_FACTOR")
		isr, okISR := envInt(broker, "KAFKA_MIN_INSYNC_REPLICAS")
		switch {
		case !okRF || !okISR:
			c.fail("%s: KAFKA_DEFAULT_REPLICATION_FACTOR and KAFKA_MIN_INSYNC_REPLICAS must be numbers", broker.Name)
		case rf > len(brokers):
			c.fail("%s: replication factor %d with %d brokers", broker.Name, rf, len(brokers))
		case rf > 1 && isr >= rf:
			c.fail("%s: min.insync.replicas %d leaves no broker to lose with replication factor %d", broker.Name, isr, rf)
		case isr < 1 || isr > rf:
			c.fail("%s: min.insync.replicas %d with replication factor %d", broker.Name, isr, rf)
		}
	}
	fmt.Printf("compose: %d Kafka nodes checked: quorum voters, replication settings\n", len(brokers))
}
