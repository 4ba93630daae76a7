// Managers' console entry. Placeholder until the console lands.
import { render } from "preact";

function App() {
  return <main><h1>联动 · 管理驾驶舱</h1></main>;
}

render(<App />, document.getElementById("app")!);
