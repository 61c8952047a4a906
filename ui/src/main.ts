import { mount } from "svelte";
import App from "./App.svelte";
import "./app.css";
import "./exam.css";
import { answerPings } from "./lib/probe";

const target = document.getElementById("app");
if (!target) throw new Error("index.html has no #app element");

void answerPings();

export default mount(App, { target });
