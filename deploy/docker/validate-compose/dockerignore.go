// The -dockerignore mode: which files the repository's .dockerignore leaves
// in the image's build context, decided by moby/patternmatcher, the matcher
// Docker's builder (BuildKit) applies to that file.
//
// Every file named on standard input (one path a line, relative to the
// context: `git ls-files`) that starts with a -need prefix must stay in the
// context, since the build reads it; every -drop path must be left out
// (build output, local state, history), since sending it would make the
// context large and its changes would invalidate the build's layers.

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// checkDockerignore returns the problems found, after printing a summary.
func checkDockerignore(ignorePath string, files io.Reader, need, drop []string) ([]string, error) {
	ignore, err := os.Open(ignorePath)
	if err != nil {
		return nil, err
	}
	defer ignore.Close()
	patterns, err := ignorefile.ReadAll(ignore)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ignorePath, err)
	}
	matcher, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ignorePath, err)
	}
	var problems []string
	kept, needed := 0, 0
	scanner := bufio.NewScanner(files)
	for scanner.Scan() {
		path := strings.TrimSpace(scanner.Text())
		if path == "" {
			continue
		}
		excluded, err := matcher.MatchesOrParentMatches(path)
		if err != nil {
			return nil, err
		}
		if !excluded {
			kept++
		}
		for _, prefix := range need {
			if path == prefix || strings.HasPrefix(path, strings.TrimSuffix(prefix, "/")+"/") {
				needed++
				if excluded {
					problems = append(problems, fmt.Sprintf(".dockerignore leaves out %s, which the build reads", path))
				}
				break
			}
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, err
	}
	for _, path := range drop {
		excluded, err := matcher.MatchesOrParentMatches(path)
		if err != nil {
			return nil, err
		}
		if !excluded {
			problems = append(problems, fmt.Sprintf(".dockerignore sends %s to the builder", path))
		}
	}
	fmt.Printf("dockerignore: %d tracked files in the build context (%d under the paths the build reads); %d paths that must stay out checked\n",
		kept, needed, len(drop))
	return problems, nil
}
