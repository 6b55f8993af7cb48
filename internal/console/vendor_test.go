package console

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// vendored are the files under assets/vendor and where each comes from:
// the npm package (pinned in package.json and package-lock.json) and the
// file in it. embed cannot read node_modules, so the files are copied; this
// test holds every copy to the pinned package, byte for byte.
var vendored = []struct{ file, pkg, path string }{
	{"htmx.min.js", "htmx.org", "dist/htmx.min.js"},
	{"htmx.LICENSE", "htmx.org", "LICENSE"},
	{"chart.umd.min.js", "chart.js", "dist/chart.umd.min.js"},
	{"chart.js.LICENSE.md", "chart.js", "LICENSE.md"},
	// Chart.js's UMD build bundles @kurkle/color.
	{"kurkle-color.LICENSE.md", "@kurkle/color", "LICENSE.md"},
}

func TestVendoredAssetsAreExactlyThePinnedPackages(t *testing.T) {
	root := filepath.Join("..", "..")
	var manifest struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	readJSON(t, filepath.Join(root, "package.json"), &manifest)
	readJSON(t, filepath.Join(root, "package-lock.json"), &lock)
	if _, err := os.Stat(filepath.Join(root, "node_modules")); err != nil {
		t.Fatalf("node_modules is missing: run `npm ci` in the repository root (`make deps` does)")
	}
	for _, v := range vendored {
		locked := lock.Packages["node_modules/"+v.pkg].Version
		if locked == "" {
			t.Errorf("package-lock.json does not pin %s", v.pkg)
			continue
		}
		if want, direct := manifest.DevDependencies[v.pkg]; direct && want != locked {
			t.Errorf("package.json pins %s %q, not exactly the locked %s", v.pkg, want, locked)
		}
		var installed struct {
			Version string `json:"version"`
		}
		readJSON(t, filepath.Join(root, "node_modules", v.pkg, "package.json"), &installed)
		if installed.Version != locked {
			t.Errorf("node_modules holds %s %s, package-lock.json %s: run `npm ci`", v.pkg, installed.Version, locked)
			continue
		}
		want, err := os.ReadFile(filepath.Join(root, "node_modules", v.pkg, v.path))
		if err != nil {
			t.Errorf("%s: %v", v.pkg, err)
			continue
		}
		got, err := assetFS.ReadFile("assets/vendor/" + v.file)
		if err != nil {
			t.Errorf("assets/vendor/%s is not embedded: %v", v.file, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("assets/vendor/%s differs from %s@%s's %s: copy it again (cp node_modules/%s/%s internal/console/assets/vendor/%s)",
				v.file, v.pkg, locked, v.path, v.pkg, v.path, v.file)
		}
	}
	entries, err := assetFS.ReadDir("assets/vendor")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(vendored) {
		t.Errorf("assets/vendor holds %d files, the list above %d: every vendored file must be checked", len(entries), len(vendored))
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
