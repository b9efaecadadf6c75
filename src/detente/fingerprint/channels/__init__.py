"""The embedding channels of a fingerprint: where a view may carry a code symbol without
changing what consumers rely on (list order where unordered, prose wording outside names,
citations and quotes, coordinates within their stated precision), the variant dictionary,
decoys, and the slots that address a position in a view."""
