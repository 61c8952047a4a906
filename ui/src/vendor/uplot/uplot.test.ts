// The vendored uPlot is the pinned npm release with exactly upstream's one-line locale fix
// (README.md beside this file): a version bump that forgets to copy it again fails here.
import published from "uplot/dist/uPlot.esm.js?raw";
import publishedCss from "uplot/dist/uPlot.min.css?raw";
import publishedLicense from "uplot/LICENSE?raw";
import publishedPackage from "uplot/package.json";
import { describe, expect, it } from "vitest";
import ourPackage from "../../../package.json";
import vendored from "./uPlot.esm.js?raw";
import vendoredCss from "./uPlot.min.css?raw";
import vendoredLicense from "./LICENSE?raw";
import readme from "./README.md?raw";

const FROM = "const numFormatter = new Intl.NumberFormat(domEnv ? nav.language : 'en-US');";
const TO = "const numFormatter = new Intl.NumberFormat();";

describe("the vendored uPlot", () => {
  it("is the pinned release, as its README says", () => {
    const pinned = { ...ourPackage.dependencies, ...ourPackage.devDependencies } as Record<string, string>;
    expect(pinned.uplot).toBe(publishedPackage.version);
    expect(readme).toContain(`uplot@${publishedPackage.version}`);
  });

  it("differs from the release in the number formatter's locale only", () => {
    const ours = vendored.split("\n");
    const theirs = published.split("\n");
    expect(ours.length).toBe(theirs.length);
    const changed = theirs.flatMap((line, i) => (line === ours[i] ? [] : [[line, ours[i]]]));
    expect(changed).toEqual([[FROM, TO]]);
    expect(vendored).not.toMatch(/Intl\.NumberFormat\([^)]*language/);
  });

  it("ships the release's stylesheet and licence unchanged", () => {
    expect(vendoredCss).toBe(publishedCss);
    expect(vendoredLicense).toBe(publishedLicense);
  });
});
