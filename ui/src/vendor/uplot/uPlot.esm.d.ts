// The vendored build's types: those of the npm package it was copied from (pinned to the
// same version in package.json), so the patched copy and the types cannot drift apart.
import uPlot from "uplot";
export default uPlot;
