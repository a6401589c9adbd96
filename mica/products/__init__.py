"""Upstream product descriptions: what each archived upstream product is, one module each.

A product description says what the files of a product are and how the archive keeps them:
the file-name pattern, how a file is checked (`describe`: format, header keywords, columns,
values; a bad file is a `mica.engine.product.RejectedFile`), the index row it becomes, the
folder it goes to and, where there is one, the column-store layout. It is data, not a
procedure: the engine (`mica.engine`) ingests any product from its description, and the
readers (`mica.archive`) serve what the engine archived. Data flow one way: a source
(`mica.sources`) delivers files, the engine checks them against the description and installs
them in the index and store, the readers read them.

* `aca_l0`: ACA level-0 image files (time-indexed, with a column store) and their format tables;
* `hdr3_items`, `hdr3_calib`: the header-3 diagnostic items of the L0 8x8 rows (byte layout,
  decoders, thermistor calibration); `hdr3_samples`: the sample tables the L0 store derives
  from them (its ``hd3s`` view); `hdr3_stats`: the items' 5-minute and daily statistics
  derived with them;
* `asp_l1`: aspect level-1 products per obsid and revision, and their processing table;
* `obspar`: observation parameter files per obsid and revision, and the parameter-file parser.

Only the formats delivered from upstream live here. A product mica derives (computes from
other products) is described in the package that reads it, with its table or folder format:
`mica.stats.acq_product`, `mica.stats.guide_product`, `mica.vv.product` and
`mica.archive.aca_dark.product`. A new product is one description module plus one entry in
`mica.engine.registry`.
"""
