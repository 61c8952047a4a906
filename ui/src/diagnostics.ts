import { mount } from "svelte";
import Diagnostics from "./Diagnostics.svelte";
import "./app.css";
import { answerPings } from "./lib/probe";

const target = document.getElementById("app");
if (!target) throw new Error("diagnostics.html has no #app element");

void answerPings();

export default mount(Diagnostics, { target });
