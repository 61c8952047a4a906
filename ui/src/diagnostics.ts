import { mount } from "svelte";
import Diagnostics from "./Diagnostics.svelte";
import "./app.css";

const target = document.getElementById("app");
if (!target) throw new Error("diagnostics.html has no #app element");

export default mount(Diagnostics, { target });
