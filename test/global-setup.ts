/** Vitest global setup: builds the WebAssembly fixtures once per run (cached by source hash). */
export default async function setup(): Promise<void> {
  const { buildAllFixtures } = await import('./fixtures/build-fixtures.js');
  await buildAllFixtures();
}
