/**
 * Runs a bench's `main` and always tears down what it started (`cleanUp`): on success, on failure and on
 * Ctrl-C. Exit code 0 when `main` resolves to anything but `false`, 1 otherwise or on an error, 130 on SIGINT.
 */
export function runMain(main: () => Promise<boolean | void>, cleanUp: () => Promise<void>): void {
  process.once('SIGINT', () => {
    void cleanUp().then(() => process.exit(130));
  });
  main()
    .then(async (passed) => {
      await cleanUp();
      process.exit(passed === false ? 1 : 0);
    })
    .catch(async (e: unknown) => {
      console.error(e);
      await cleanUp();
      process.exit(1);
    });
}
