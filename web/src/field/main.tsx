// Field app entry (officers and monitoring staff). Placeholder until the field app lands.
import { render } from "preact";

function App() {
  return <main><h1>联动 · 外勤</h1></main>;
}

render(<App />, document.getElementById("app")!);
