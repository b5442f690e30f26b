package app

// DBURL exposes dbURL to the tests.
var DBURL = dbURL
