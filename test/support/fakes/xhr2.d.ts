/** xhr2 ships no types: it exports a W3C XMLHttpRequest class for Node (what rxjs 5's ajax, inside botframework-directlinejs, needs). */
declare module 'xhr2' {
  const XMLHttpRequest: new () => unknown;
  export default XMLHttpRequest;
}
